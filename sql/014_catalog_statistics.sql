-- The catalog's document columns are read, never searched: no query filters, joins or
-- sorts on them, so the planner has no use for their statistics (most common values
-- and histograms of kilobyte-sized jsonb values), which every ANALYZE of the tables
-- (a big sync's, autovacuum's) spent time building.
ALTER TABLE catalog_items
    ALTER COLUMN document SET STATISTICS 0,
    ALTER COLUMN presentation SET STATISTICS 0,
    ALTER COLUMN fulfillment SET STATISTICS 0;
ALTER TABLE catalog_bundles
    ALTER COLUMN document SET STATISTICS 0,
    ALTER COLUMN presentation SET STATISTICS 0,
    ALTER COLUMN fulfillment SET STATISTICS 0,
    ALTER COLUMN bundle_definition SET STATISTICS 0;
