-- `INSERT OR REPLACE` deletes the old row without firing the DELETE trigger (recursive
-- triggers are off), so refuse any insert that would land on an existing seq.
CREATE TRIGGER events_append_only_replace BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'clawos: the event log is append-only; replacing a seq refused');
END;
