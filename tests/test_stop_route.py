"""kmagic.widgets.stop_route without a kernel: the kernel id, the reason shown where no route exists,
and what a click does to a dashboard. (Clicks through real kernels: tests/test_dashboard_kernel.py.)"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmagic.widgets import stop_route
from kmagic.widgets.dashboard import Dashboard


def test_kernel_id_comes_from_a_jupyter_server_connection_file() -> None:
    uuid = "0c8d6e62-5b1c-4e0e-9d7a-2f1f3c1a7b10"
    assert stop_route.kernel_id_from(f"/run/user/0/jupyter/runtime/kernel-{uuid}.json") == uuid
    assert stop_route.kernel_id_from(f"kernel-{uuid.upper()}.json") == uuid
    for other in (None, "", "/tmp/tmpfcltbcyi.json", "kernel-v3-123.json", f"kernel-{uuid}.json.bak"):
        assert stop_route.kernel_id_from(other) is None


def test_without_a_kernel_the_route_says_why_and_what_to_do(shell: Any) -> None:
    route = stop_route.route(object())
    assert set(route) == {"reason"}
    assert "control channel" in route["reason"] and "Interrupt the kernel" in route["reason"]


def test_a_click_stops_only_a_running_dashboard() -> None:
    from kmagic._keras import keras

    k = keras()
    model = k.Sequential([k.Input((4,)), k.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((64, 4), "float32"), np.zeros((64, 1), "float32")
    dash = Dashboard(frontend="text", final_image=False, show=False)
    token = "tok"
    stop_route._targets[token] = dash
    try:
        assert stop_route.request_stop(token) is False  # not training: nothing to stop
        assert stop_route.last_request["stopped"] is False

        class ClickAt(k.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                if batch == 2:
                    self.clicked = stop_route.request_stop(token)

        click = ClickAt()
        fit = model.fit(x, y, epochs=50, batch_size=8, verbose=0, callbacks=[dash, click])
        assert click.clicked and stop_route.last_request["stopped"] is True
        assert len(fit.epoch) == 1 and dash.history.stop_reason == "Stop button"
        assert stop_route.request_stop("unknown") is False and stop_route.request_stop(None) is False
    finally:
        stop_route.forget(token)
    assert token not in stop_route._targets
