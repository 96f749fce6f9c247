-- The event store's batch append as one server-side call: the appender's whole transaction in one round trip.
--
-- It does what the appender used to do in five round trips (BEGIN, LOCK, read the head and the streams'
-- versions, insert + notify, COMMIT), with the same locking: LOCK TABLE events IN EXCLUSIVE MODE from position
-- assignment to commit, so positions stay gap-free and a reader tailing by position never skips a late commit
-- (0001, ADR 0003). Called on its own it runs in an implicit transaction that commits when the statement ends;
-- the caller's reply arrives only after that commit. Being VOLATILE, each statement below takes a fresh
-- snapshot, so the head read after the LOCK sees every batch committed before the lock was granted.
--
-- A batch is a list of commits; a commit is one or more submissions (events for one stream at an expected
-- version) that are appended together or not at all. Arguments, all arrays (1-based):
--   streams        the distinct stream ids of the batch
--   commit_of      per submission, in batch order: the index of its commit (non-decreasing)
--   stream_of      per submission: the index of its stream in `streams`
--   expected       per submission: the stream version it was decided on
--   submission_of  per event, in batch order: the index of its submission (non-decreasing)
--   topics, schema_versions, event_data, event_metadata: per event
-- A commit any of whose submissions finds its stream at another version is left out (later commits in the
-- batch see the versions of the earlier ones that went in). Returns the head before the batch, from which the
-- caller numbers the events it sent (positions head + 1 ... over the commits that went in, in order), and
-- for each commit left out: its index, the stream and the expected and actual versions that failed it.
CREATE FUNCTION event_store_append(
    streams uuid[],
    commit_of int[],
    stream_of int[],
    expected int[],
    submission_of int[],
    topics text[],
    schema_versions smallint[],
    event_data jsonb[],
    event_metadata jsonb[],
    OUT head_before bigint,
    OUT stale_commits int[],
    OUT stale_streams uuid[],
    OUT stale_expected int[],
    OUT stale_actual int[]
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    submissions int := coalesce(cardinality(commit_of), 0);
    current_version int[];   -- per stream: its version with the commits decided so far applied
    counts int[] := array_fill(0, ARRAY[submissions]);
    included boolean[] := '{}';
    first_sub int := 1;
    next_sub int;
    failed_at int;
    sub int;
    inserted bigint;
BEGIN
    LOCK TABLE events IN EXCLUSIVE MODE;

    -- One backward index step for the head and one per stream (recorder._APPEND says why this form).
    head_before := coalesce((SELECT e.position FROM events e ORDER BY e.position DESC LIMIT 1), 0);
    SELECT array_agg(coalesce((SELECT e.stream_version FROM events e WHERE e.stream_id = s.id
                               ORDER BY e.stream_version DESC LIMIT 1), 0) ORDER BY s.i)
      INTO current_version
      FROM unnest(streams) WITH ORDINALITY AS s(id, i);

    FOREACH sub IN ARRAY submission_of LOOP
        counts[sub] := counts[sub] + 1;
    END LOOP;

    stale_commits := '{}';
    stale_streams := '{}';
    stale_expected := '{}';
    stale_actual := '{}';
    WHILE first_sub <= submissions LOOP
        -- Submissions first_sub .. next_sub - 1 form one commit: apply them, undo them all if one is stale.
        next_sub := first_sub;
        failed_at := 0;
        WHILE next_sub <= submissions AND commit_of[next_sub] = commit_of[first_sub] LOOP
            IF failed_at = 0 THEN
                IF current_version[stream_of[next_sub]] = expected[next_sub] THEN
                    current_version[stream_of[next_sub]] := expected[next_sub] + counts[next_sub];
                ELSE
                    failed_at := next_sub;
                END IF;
            END IF;
            next_sub := next_sub + 1;
        END LOOP;
        IF failed_at = 0 THEN
            included[commit_of[first_sub]] := true;
        ELSE
            stale_commits := stale_commits || commit_of[first_sub];
            stale_streams := stale_streams || streams[stream_of[failed_at]];
            stale_expected := stale_expected || expected[failed_at];
            stale_actual := stale_actual || current_version[stream_of[failed_at]];
            included[commit_of[first_sub]] := false;
            -- Each applied submission found its stream at its expected version: restoring those, last first,
            -- leaves every stream as it was before this commit.
            FOR sub IN REVERSE failed_at - 1 .. first_sub LOOP
                current_version[stream_of[sub]] := expected[sub];
            END LOOP;
        END IF;
        first_sub := next_sub;
    END LOOP;

    -- Window functions number the rows after WHERE has dropped the stale commits' events: no gaps.
    INSERT INTO events (position, stream_id, stream_version, topic, schema_version, data, metadata)
    SELECT head_before + row_number() OVER (ORDER BY e.ord),
           streams[stream_of[e.sub]],
           expected[e.sub] + row_number() OVER (PARTITION BY e.sub ORDER BY e.ord),
           e.topic, e.schema_version, e.data, e.metadata
      FROM unnest(submission_of, topics, schema_versions, event_data, event_metadata)
           WITH ORDINALITY AS e(sub, topic, schema_version, data, metadata, ord)
     WHERE included[commit_of[e.sub]];
    GET DIAGNOSTICS inserted = ROW_COUNT;

    -- Delivered only if the transaction commits (the channel is recorder.NOTIFY_CHANNEL).
    IF inserted > 0 THEN
        PERFORM pg_notify('csms_events', (head_before + inserted)::text);
    END IF;
END;
$$;
