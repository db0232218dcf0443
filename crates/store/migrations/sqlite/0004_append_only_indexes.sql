-- The per-call ordering check reads a call's few deliveries through deliveries_by_call; a
-- second index keyed by the (random) call uuid cost a random page write per event.
DROP INDEX deliveries_pending_by_destination;
