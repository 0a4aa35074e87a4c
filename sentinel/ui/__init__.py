"""The operator's web dashboard at ``/ui``: one page, its static files and its data feeds."""

from sentinel.ui.feeds import DashboardController
from sentinel.ui.pages import ui_route_handlers

__all__ = ["DashboardController", "ui_route_handlers"]
