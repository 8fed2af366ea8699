"""Train a network of multicompartment cells on a classification task (Jaxley's demonstration).

    .venv/bin/python examples/network_classification.py            # the documented run
    .venv/bin/python examples/network_classification.py --small    # the CI version (< 1 min)

The network: ball-and-stick cells with Hodgkin-Huxley channels in three layers,

    2 input cells --> n_hidden cells --> 2 output cells

every layer fully connected to the next by graded ``IonotropicSynapse``s, one excitatory
(e_syn = 0 mV) and one inhibitory (e_syn = -80 mV) per pair of cells, so training the
conductances ``gS`` also sets the sign of each connection. A sample (x1, x2) in [0, 1]^2 is
presented as two current steps, one into each input cell's soma (amplitude a0 + a1 * x, nA,
batched through ``params["stimuli"]["iclamp"]["amp"]`` by ``simulate_batch``). The class
scores are the output cells' mean somatic voltages over the last ``window`` ms, and the loss is
the softmax cross-entropy of those scores (in units of ``temperature`` mV).

The synapses run in a graded, mostly subthreshold regime (v_th = -60 mV, delta = 5 mV,
k_minus = 0.2 / ms): the synaptic open fraction follows the presynaptic voltage smoothly, so
gradients flow through every cell. All gS are trained, one value per synapse, with
``dendrax.training.Trainables`` (a sigmoid transform onto (0, g_max) uS) and optax's Adam on
mini-batches.

The task: two Gaussian blobs in the unit square (centres (0.3, 0.7) and (0.7, 0.3), sd 0.15,
fixed seed), not separable by either feature alone; the Bayes accuracy is about 0.97.

``main(argv)`` returns a dict with the per-epoch training loss ("history"), the test accuracy
before and after training, and the wall time (tests/test_examples.py runs ``--small``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Config:
    n_hidden: int = 8
    n_train: int = 256
    n_test: int = 256
    epochs: int = 20
    batch: int = 8
    lr: float = 0.3  # Adam, cosine-decayed to lr / 10
    t_stop: float = 30.0  # ms
    dt: float = 0.025  # ms
    window: float = 10.0  # ms: the readout averages the output somas' v over the last window
    temperature: float = 2.0  # mV: logits = (v_mean + 60) / temperature
    g_max: float = 0.01  # uS: each gS lies in (0, g_max)
    amp0: float = -0.08  # nA: input current for feature value 0 ...
    amp1: float = 0.1  # nA: ... plus amp1 * feature value (x = 1: -0.08 + 0.1 = 0.02 nA)
    seed: int = 0  # dataset, initial conductances and mini-batch order


SMALL = Config(n_hidden=6, n_train=64, n_test=100, epochs=20, t_stop=20.0, dt=0.1, window=5.0)
LARGE = Config(lr=0.1)

N_IN, N_OUT = 2, 2
SYNAPSE = dict(k_minus=0.2, v_th=-60.0, delta=5.0)  # graded, subthreshold regime
E_SYN = (0.0, -80.0)  # an excitatory and an inhibitory synapse per pair of cells


def make_dataset(n: int, rng: np.random.Generator):
    """n samples of two Gaussian blobs in [0, 1]^2 (balanced classes, shuffled): x [n, 2], y [n]."""
    y = rng.permutation(np.arange(n) % 2)
    centres = np.array([[0.3, 0.7], [0.7, 0.3]])
    x = np.clip(centres[y] + 0.15 * rng.standard_normal((n, 2)), 0.0, 1.0)
    return x, y


def build_network(n_hidden: int):
    """The 2 -> n_hidden -> 2 network; its recordings are the output cells' somatic v."""
    import dendrax as dx

    def cell():
        c = dx.Cell.ball_and_stick(nseg=[1, 2], dend_length=100.0, dend_diam=1.0, Ra=100.0)
        c.insert("hh")
        return c

    n = N_IN + n_hidden + N_OUT
    net = dx.Network([cell() for _ in range(n)])
    inputs, hidden, outputs = (range(N_IN), range(N_IN, N_IN + n_hidden),
                               range(N_IN + n_hidden, n))
    for i in inputs:  # one current step per input cell; amplitudes set per sample
        net.cell(i).iclamp(net.cell(i).soma(0.5), delay=0.0, dur=1e9, amp=0.0)
    for e_syn in E_SYN:
        net.fully_connect(inputs, hidden, "IonotropicSynapse", gS=1e-3, e_syn=e_syn, **SYNAPSE)
        net.fully_connect(hidden, outputs, "IonotropicSynapse", gS=1e-3, e_syn=e_syn, **SYNAPSE)
    for o in outputs:
        net.record("v", net.cell(o).soma(0.5))
    return net


def train(cfg: Config, *, verbose: bool = True) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    from dendrax.training import Sigmoid, Trainables, simulate_batch

    start = time.perf_counter()
    say = print if verbose else (lambda *a, **k: None)
    rng = np.random.default_rng(cfg.seed)
    x_train, y_train = make_dataset(cfg.n_train, rng)
    x_test, y_test = make_dataset(cfg.n_test, rng)

    net = build_network(cfg.n_hidden)
    tr = Trainables(net).add("IonotropicSynapse.gS", share="segment",
                             transform=Sigmoid(0.0, cfg.g_max))
    theta = tr.sample(jax.random.PRNGKey(cfg.seed), margin=0.1)
    base = net.params
    n_window = int(round(cfg.window / cfg.dt))

    def logits(theta, x):
        amps = cfg.amp0 + cfg.amp1 * x  # [B, 2]: one current step per input cell
        v = simulate_batch(net, {"stimuli": {"iclamp": {"amp": amps}}}, cfg.t_stop, cfg.dt,
                           base=tr.apply(theta, base))  # [B, 2 outputs, n_t]
        return (v[:, :, -n_window:].mean(-1) + 60.0) / cfg.temperature

    def loss(theta, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits(theta, x), y).mean()

    steps_per_epoch = -(-cfg.n_train // cfg.batch)
    optimizer = optax.adam(optax.cosine_decay_schedule(cfg.lr, cfg.epochs * steps_per_epoch,
                                                       alpha=0.1))
    state = optimizer.init(theta)

    @jax.jit
    def step(theta, state, x, y):
        value, grad = jax.value_and_grad(loss)(theta, x, y)
        updates, state = optimizer.update(grad, state, theta)
        return optax.apply_updates(theta, updates), state, value

    predict = jax.jit(lambda theta, x: jnp.argmax(logits(theta, x), -1))

    def accuracy(theta, x, y):  # in chunks of cfg.batch: one compiled shape for every set
        pad = -len(x) % cfg.batch
        xp = np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x
        pred = np.concatenate([np.asarray(predict(theta, xp[b:b + cfg.batch]))
                               for b in range(0, len(xp), cfg.batch)])
        return float(np.mean(pred[:len(x)] == y))

    n_syn = len(tr.groups("IonotropicSynapse.gS"))
    say(f"network: {len(net)} cells ({N_IN} input, {cfg.n_hidden} hidden, {N_OUT} output), "
        f"{n_syn} IonotropicSynapses (gS trained); {cfg.n_train} training / {cfg.n_test} test "
        f"samples; {cfg.t_stop:g} ms at dt {cfg.dt:g} ms per sample")
    acc0 = accuracy(theta, x_test, y_test)
    say(f"test accuracy before training: {acc0:.3f}")
    history = []
    for epoch in range(cfg.epochs):
        order = rng.permutation(cfg.n_train)
        losses = []
        for b in range(0, cfg.n_train, cfg.batch):
            idx = order[b:b + cfg.batch]
            theta, state, value = step(theta, state, x_train[idx], y_train[idx])
            losses.append(float(value))
        history.append(float(np.mean(losses)))
        say(f"epoch {epoch + 1:3d}  loss {history[-1]:.4f}  ({time.perf_counter() - start:.1f} s)")
    acc = accuracy(theta, x_test, y_test)
    train_acc = accuracy(theta, x_train, y_train)
    seconds = time.perf_counter() - start
    say(f"train accuracy {train_acc:.3f}, test accuracy {acc:.3f} (chance 0.5); {seconds:.1f} s")
    gs = np.asarray(tr.values(theta)["IonotropicSynapse.gS"])
    return {"history": np.asarray(history), "test_accuracy": acc, "train_accuracy": train_acc,
            "initial_test_accuracy": acc0, "seconds": seconds, "theta": theta, "gS": gs,
            "config": cfg}


def main(argv=None) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)  # float64, as every dendrax example
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="the quick CI version (fewer cells, samples and epochs; dt 0.1 ms)")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--seed", type=int, help="override the seed")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    cfg = SMALL if args.small else LARGE
    if args.epochs is not None:
        cfg = replace(cfg, epochs=args.epochs)
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    return train(cfg, verbose=not args.quiet)


if __name__ == "__main__":
    main()
