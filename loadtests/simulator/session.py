"""One simulated charging session: its identifiers, meter readings and sequence numbers, and why it ended."""

from __future__ import annotations

import enum


class StopCause(enum.Enum):
    """Why a session ended, in the simulator's words; each protocol maps it to its own reason codes."""

    LOCAL = "local"  # the driver ended it (the session ran its course)
    REMOTE = "remote"  # RemoteStopTransaction / RequestStopTransaction
    HARD_RESET = "hard_reset"  # Reset Hard (1.6) or Immediate (2.0.1)
    SOFT_RESET = "soft_reset"  # Reset Soft (1.6)
    UNLOCK = "unlock"  # UnlockConnector (1.6)
    DEAUTHORIZED = "deauthorized"  # the CSMS did not accept the idTag in its response to the start


class Session:
    """A transaction on one connector; times are event-loop seconds, readings the meter register in Wh."""

    __slots__ = (
        "cause",
        "connector",
        "ends_at",
        "id_tag",
        "id_type",
        "local_id",
        "meter_start",
        "next_sample_at",
        "remote_start_id",
        "seq_no",
        "transaction_id",
    )

    def __init__(
        self,
        *,
        connector: int,
        id_tag: str,
        id_type: str,
        local_id: str,
        meter_start: int,
        next_sample_at: float,
        ends_at: float,
        remote_start_id: int | None = None,
    ) -> None:
        self.connector = connector
        self.id_tag = id_tag
        self.id_type = id_type
        #: The charger's own transaction id (2.0.1's transactionId); 1.6 uses the CSMS's integer below.
        self.local_id = local_id
        self.meter_start = meter_start
        self.next_sample_at = next_sample_at
        self.ends_at = ends_at
        self.remote_start_id = remote_start_id
        #: Assigned by the CSMS in StartTransaction.conf (1.6 only); None until that answer arrives.
        self.transaction_id: int | None = None
        self.seq_no = 0
        self.cause = StopCause.LOCAL

    def next_seq_no(self) -> int:
        """2.0.1's seqNo: 0 for Started, then one more for every TransactionEvent of the transaction."""
        seq_no = self.seq_no
        self.seq_no = seq_no + 1
        return seq_no
