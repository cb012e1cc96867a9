-- Alerts whose latest state is firing.
SELECT
    fingerprint,
    argMax(kind, emitted_at) AS kind,
    argMax(model, emitted_at) AS model,
    argMax(feature, emitted_at) AS feature,
    argMax(severity, emitted_at) AS severity,
    argMax(summary, emitted_at) AS summary,
    max(emitted_at) AS since,
    argMax(pipeline, emitted_at) AS pipeline,
    argMax(stage, emitted_at) AS stage
FROM {db}.alerts FINAL
GROUP BY fingerprint
HAVING argMax(state, emitted_at) = 'firing'
ORDER BY since DESC;
