// Package grafana holds driftd's Grafana dashboard (dashboards/driftd.json) and the
// provisioning that docker-compose.yml mounts (a ClickHouse data source, the dashboard
// folder). Its test checks the dashboard's structure and runs every panel's query against
// the ClickHouse engine on driftd's tables, so that a migration that renames a column
// breaks the test, not the dashboard.
package grafana
