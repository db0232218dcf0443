-- From this version a delivery behind an earlier pending event of its call to the same URL is
-- stored without a due time until that event ends. Builds before it would never send such a
-- delivery, so this step (which changes no table) makes them refuse the database.
SELECT 1;
