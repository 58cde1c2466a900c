"""The Grafana dashboards, built with Grafana's own grafana-foundation-sdk: one module per dashboard.

panels.py holds the panel helpers every dashboard builds from (so all three follow the same lint
rules: datasource variable, job/instance matchers, units, points per query), board.py the variables,
links and assembly of a dashboard. tools/gen_dashboards.py writes their JSON to grafana/dashboards/.
"""
