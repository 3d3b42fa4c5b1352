"""`authsvc rotate`'s metrics on `serve`'s /metrics: a collector registered on the app's registry.

No routes: /metrics (web/health.py) renders the registry, and this collector adds the last
run's figures from the inventory's `rotation_runs` (authsvc/rotation/report.py), read at most
every 30 seconds. In Kubernetes the rotate Job and the webhook pods share the database, so
this is where the Job's outcome becomes visible to Prometheus.
"""

from __future__ import annotations

from flask import Blueprint, Flask
from flask.blueprints import BlueprintSetupState

from authsvc.metrics.server import metrics_for
from authsvc.rotation.report import RotationCollector
from authsvc.web.app import services_of

blueprint = Blueprint("rotation_metrics", __name__)


@blueprint.record_once
def _register(state: BlueprintSetupState) -> None:
    app = state.app
    assert isinstance(app, Flask)  # flask types the setup state's app as its sans-IO base
    home = services_of(app).home
    metrics_for(app).registry.register(RotationCollector(lambda: home.stores.engine))
