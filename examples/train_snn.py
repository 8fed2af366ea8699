"""Train a small spiking network of LIF point neurons with surrogate gradients and optax.

    .venv/bin/python examples/train_snn.py           # the documented run
    .venv/bin/python examples/train_snn.py --small   # the CI version (well under a minute)

The network (all inside one ``dx.Network``):

    n_in dc_generators --(static, trained)--> n_hidden LIF --(static, trained)--> 2 LIF readouts

A sample is a vector of n_in input currents (pA): the dc_generators' amplitudes, batched with
``jax.vmap`` over ``params["populations"]["inputs"]["amplitude"]``. The hidden LIF neurons
(brainpy-style, ``surrogate="fast_sigmoid"``) spike; their spikes reach the two readout neurons
(V_th out of reach: they only integrate) through trained weights (mV per spike). The class
scores are the readouts' mean membrane potentials, and the loss their softmax cross-entropy.
Gradients reach the input weights through the hidden spikes by the surrogate's derivative
(``dendrax.point.surrogate``); the forward run is the exact spiking simulation.

The task: two classes of input patterns (class 0 drives the first half of the inputs harder,
class 1 the second half) with noise; chance is 50 %.

``main(argv)`` returns the loss history and the test accuracy before and after training.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def build(n_in: int, n_hidden: int, seed: int):
    import dendrax as dx

    rng = np.random.default_rng(seed)
    net = dx.Network()
    inputs = net.population("dc_generator", n_in, name="inputs")
    hidden = net.population("LIF", n_hidden, name="hidden", tau=5.0, V_th=1.0,
                            surrogate="fast_sigmoid")
    readout = net.population("LIF", 2, name="readout", tau=10.0, V_th=1e6)
    net.connect(inputs, hidden, weight=rng.normal(0.15, 0.3, n_in * n_hidden), delay=0.1)
    net.connect(hidden, readout, weight=rng.normal(0.0, 0.05, n_hidden * 2), delay=0.1)
    net.record("V_m", readout)
    return net


def data(n: int, n_in: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    half = np.arange(n_in) < n_in // 2
    x = np.where(half[None, :] == (y[:, None] == 0), 1.6, 0.9) + rng.normal(0, 0.25, (n, n_in))
    return x.clip(0.0), y


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="a shorter run for CI")
    args = ap.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    import dendrax as dx

    n_in, n_hidden = 8, 16
    steps, batch, t_stop = (25, 16, 20.0) if args.small else (80, 32, 30.0)
    net = build(n_in, n_hidden, seed=0)
    base = net.params
    x_train, y_train = data(256, n_in, seed=1)
    x_test, y_test = data(128, n_in, seed=2)

    def scores(w, x):
        p = {**base, "synapses": {**base["synapses"], "static": {**base["synapses"]["static"],
                                                                "weight": w}},
             "populations": {**base["populations"],
                             "inputs": {**base["populations"]["inputs"], "amplitude": x}}}
        v = dx.simulate(net, t_stop, 0.1, params=p).traces  # [2, n_t] readout V_m, mV
        return 2.0 * v.mean(axis=1)  # class scores, in units of 0.5 mV

    batched = jax.vmap(scores, in_axes=(None, 0))

    @jax.jit
    def loss(w, x, y):
        logits = batched(w, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def accuracy(w, x, y):
        return (jnp.argmax(batched(w, x), axis=1) == y).mean()

    w = w0 = base["synapses"]["static"]["weight"]  # input->hidden first, then hidden->readout
    opt = optax.adam(0.05)
    state = opt.init(w)
    grad = jax.jit(jax.value_and_grad(loss))
    before = float(accuracy(w, x_test, y_test))
    rng = np.random.default_rng(3)
    history, t0 = [], time.perf_counter()
    for step in range(steps):
        idx = rng.choice(len(y_train), batch, replace=False)
        value, g = grad(w, x_train[idx], y_train[idx])
        updates, state = opt.update(g, state)
        w = optax.apply_updates(w, updates)
        history.append(float(value))
    after = float(accuracy(w, x_test, y_test))
    out = {"history": history, "accuracy_before": before, "accuracy_after": after,
           "seconds": time.perf_counter() - t0,
           # the input weights learn through the hidden spikes' surrogate gradient
           "input_weight_change": float(jnp.abs(w - w0)[:n_in * n_hidden].max())}
    print(f"loss {history[0]:.3f} -> {np.mean(history[-5:]):.3f}; test accuracy "
          f"{before:.2f} -> {after:.2f} ({out['seconds']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
