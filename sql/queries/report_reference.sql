-- The newest reference profile of a model version (detectors.Profile as JSON), for the
-- report's reference-vs-current chart. Parameters: model, version.
SELECT profile
FROM {db}.reference_profiles FINAL
WHERE model = {model:String} AND model_version = {version:String}
ORDER BY created_at DESC
LIMIT 1;
