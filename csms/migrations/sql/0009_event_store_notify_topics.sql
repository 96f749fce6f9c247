-- The append's notification names the batch's topics after the new head: "1234 Charger.Booted Charger.Seen".
--
-- Every subscriber with a topic filter (each projection, billing) woke on every append and read the log
-- twice (the head, then its topics after its position) to find, most of the time, nothing: with ten thousand
-- chargers' meter values appended in a few hundred batches a second, that was most of the projector's and
-- billing's CPU, and of Postgres's. A listener now wakes only for a batch holding one of its topics (or for a
-- payload without topics, as 0008 sent). Notifications can still be lost, so subscribers still poll.
-- The body is 0008's with the notification changed.
CREATE OR REPLACE FUNCTION event_store_append(
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
    batch_topics text;
BEGIN
    -- Writers only: the key is recorder.APPEND_LOCK. Released, like any lock, after the commit is visible.
    PERFORM pg_advisory_xact_lock(hashtextextended('csms:event-store-append', 0));

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

    -- Delivered only if the transaction commits (the channel is recorder.NOTIFY_CHANNEL): the new head, then
    -- the batch's topics, so that a listener waiting for other topics need not wake. A payload must stay
    -- under 8000 bytes; a batch with too many topics to name sends the head alone, which wakes everyone.
    IF inserted > 0 THEN
        SELECT string_agg(DISTINCT e.topic, ' ')
          INTO batch_topics
          FROM unnest(submission_of, topics) AS e(sub, topic)
         WHERE included[commit_of[e.sub]];
        IF octet_length(batch_topics) > 7000 THEN
            batch_topics := NULL;
        END IF;
        PERFORM pg_notify('csms_events', concat_ws(' ', (head_before + inserted)::text, batch_topics));
    END IF;
END;
$$;
