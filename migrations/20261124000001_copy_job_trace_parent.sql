-- The W3C traceparent of the CopyModelVersion call that created a job (its server span, or the caller's context
-- when spans are not recorded), so that the dispatcher's work on the copy can be tied to that request's trace.
-- NULL for jobs created before this column, and for calls that came with no trace and recorded none.
ALTER TABLE copy_jobs ADD COLUMN trace_parent TEXT;
