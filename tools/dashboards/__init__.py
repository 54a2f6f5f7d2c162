"""Grafana dashboards as code: the overview and market dashboards built with
grafana-foundation-sdk, written to deploy/grafana/dashboards/ for Grafana's provisioning."""

from tools.dashboards.files import DASHBOARD_DIR, DASHBOARD_FILES
from tools.dashboards.queries import annotation_queries, panel_queries

__all__ = ["DASHBOARD_DIR", "DASHBOARD_FILES", "annotation_queries", "panel_queries"]
