"""fit: surrogate-gradient descent on a column's drive and weights reaches a target rate."""

import numpy as np
import jax
import pytest

import dendrax.column as dc


def small():
    return (dc.configuration().runtime(seed=0, duration_ms=100.0, dt_ms=0.5)
            .column("A", ["L2/3", "L5"], 40).cell_types({"E": 0.8, "I": 0.2})
            .set_emitter("izhikevich", "cortical_eig").probes(["SPK"]))


def test_fit_reaches_target_rate():
    cfg = small()
    model = dc.construct(cfg)
    spec = dc.readout_spec("r", "spike_rate_hz", cell_type="E")
    rate0 = model.compute_readout(model.simulate(), spec)["r"]
    target = 2.0 * rate0
    res = dc.fit(cfg, dc.objective("rate", "spike_rate_hz", target, cell_type="E"),
                 params=("weights", "drive"), steps=12, learning_rate=0.2)
    assert isinstance(res, dc.FitResult) and len(res.history) <= 12
    assert res.best_loss < 0.2 * res.history[0]
    assert abs(res.readouts["rate"] - target) < 0.15 * target
    # the fitted configuration reproduces the rate when run on its own
    fitted = dc.construct(res.cfg)
    again = fitted.compute_readout(fitted.simulate(), spec)["r"]
    assert np.isclose(again, res.readouts["rate"])
    assert res.cfg.drive_values()["mean"]["E"] == pytest.approx(res.values["drive"]["E"])
    assert set(res.values) == {"weights", "drive"} and res.start["weights"]["EE"] == 1.0


def test_fit_errors():
    with pytest.raises(ValueError, match="unknown fit params"):
        dc.fit(small(), dc.objective("r", "spike_rate_hz", 5.0), params=("delays",))
    with pytest.raises(ValueError, match="objectives"):
        dc.fit(small(), [], steps=1)
    with pytest.raises(ValueError, match="point-neuron columns"):
        dc.fit(small().set_emitter("multicompartment"), dc.objective("r", "spike_rate_hz", 5.0))
    # checked as simulate checks them (ran silently in float32; a NaN rate accepted)
    for rate in (float("nan"), -0.1, 0):
        with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
            dc.fit(small(), dc.objective("r", "spike_rate_hz", 5.0), learning_rate=rate)
    import optax  # a schedule and a numpy number stay accepted

    for rate in (np.float32(0.05), optax.exponential_decay(0.05, 1, 0.9)):
        dc.fit(small().runtime(duration_ms=10.0), dc.objective("r", "spike_rate_hz", 5.0),
               steps=1, learning_rate=rate)
    with jax.enable_x64(False), pytest.raises(ValueError, match="JAX's 64-bit mode is off"):
        dc.fit(small().runtime(dtype="float64"), dc.objective("r", "spike_rate_hz", 5.0))


def test_reverse_and_forward_mode_give_the_same_fit():
    """mode="reverse" (what "auto" picks for more than 8 values, not for this small fit)
    takes the same steps as forward mode: the same gradients, to rounding."""
    cfg = (dc.configuration().runtime(seed=0, duration_ms=50.0, dt_ms=0.5)
           .column("A", ["L2/3", "L5"], 30).set_emitter("izhikevich", "cortical_eig")
           .probes(["SPK"]))
    obj = dc.objective("rate", "spike_rate_hz", 20.0)
    runs = {mode: dc.fit(cfg, obj, params=("drive",), steps=3, learning_rate=0.2, mode=mode)
            for mode in ("forward", "reverse")}
    f, r = (np.asarray(runs[m].history) for m in ("forward", "reverse"))
    assert f.shape == r.shape and f[-1] < f[0]
    np.testing.assert_allclose(r, f, rtol=1e-9)
