"""Multicompartment columns: detailed cells placed in the laminar geometry, with physical
extracellular signals (``dendrax.extracellular``).

Each neuron is the ``l5pc_like`` emitter's cell (``emitters.detailed_cell``), its soma
centre at the neuron's laminar position, its apical axis along +z (the pia), turned by a
random angle about z. Connections are Exp2Syn synapses (tau1 0.5 ms, tau2 3 ms; weight
uS): from "E" cells (reversal 0 mV) onto the oblique apical branch, from "I" cells
(reversal -80 mV) onto the soma; a spike is v crossing -10 mV at the presynaptic soma.
The drive: an IClamp of ``mean`` nA at each soma for the whole run, and an independent
Poisson train of ``rate_hz`` (drawn from the seed when the model is built, up to the
configuration's duration) onto the apical tuft and another onto a basal dendrite of every
cell, Exp2Syn of ``weight`` uS.

Physical signals (recorded inside the run, ``Network.record_extracellular`` /
``record_dipole``):

* ``LFP`` [time, electrodes] uV: line-source potentials at the laminar electrodes
  (sigma 0.3 S/m), each column's electrodes seeing every cell of every column;
* ``CSD`` [time, interior electrodes] uA/mm^3: ``dendrax.extracellular.csd`` (standard
  second difference, no end padding) of each column's LFP;
* ``EEG`` [time, columns] uV: the four-sphere model (``eeg_four_sphere``, lfpykit's radii
  and conductivities) of each column's current dipole (about the column's centre: the
  IClamp drive's net current is not a dipole), the column's pia placed 100 um below
  the brain sphere's surface on the z axis (shifted by its centre's x, y), an electrode on
  the scalp above each column; each electrode sums all columns;
* ``MEG`` [time, sensors] fT: ``meg`` of the columns' dipoles at the MEG sensors of the
  geometry (infinite homogeneous conductor), summed, then the component along
  e_phi = z x R / |z x R|, R from the sensor's own column (the azimuthal direction about
  its axis, where a radial dipole's field lies): ``azimuthal_meg``.
"""

from __future__ import annotations

import numpy as np

from .config import CELL_TYPES, probability_too_high

SPIKE_THRESHOLD = -10.0  # mV
TAU1, TAU2 = 0.5, 3.0  # ms
E_REV = {"E": 0.0, "I": -80.0}
CELSIUS, V_INIT = 34.0, -80.0
PIA_DEPTH_UM = 100.0  # the pia below the brain sphere's surface (EEG)
# sections of emitters.pyramidal_morphology
SOMA, BASAL, OBLIQUE, TUFT = 0, 2, 8, 9



def azimuthal_meg(moments, locations, sensors):
    """[S, T] fT: the magnetic field of the columns' current dipoles ``moments`` (C of
    [3, T] nA um, at ``locations`` C of [3] um, column coordinates) at ``sensors`` [S, 3]
    um (sensor s beside column s, S = C), in an infinite homogeneous conductor, summed over
    the columns and then taken along each sensor's azimuthal direction about its own
    column's vertical axis (one direction per sensor: the sum of per-column projections
    would not be a component of the field)."""
    import jax.numpy as jnp

    from ..extracellular import meg

    sensors = np.asarray(sensors, float)
    own = np.stack([np.asarray(loc, float) for loc in locations])
    e_phi = np.cross([0.0, 0.0, 1.0], sensors - own)
    e_phi = e_phi / np.linalg.norm(e_phi, axis=1, keepdims=True)
    total = sum(meg(p, loc, sensors) for p, loc in zip(moments, locations))  # [S, 3, T]
    return jnp.einsum("sct,sc->st", total, e_phi)

class DetailedColumn:
    """The network and recordings of a multicompartment column (built by ``build_detailed``)."""

    def __init__(self, model):
        import jax

        import dendrax as dx
        from ..extracellular import Electrodes
        from .emitters import detailed_cell

        cfg, g = model.cfg, model.geometry
        self.model = model
        con, drive = cfg.connectivity_values(), cfg.drive_values()
        rng = np.random.default_rng([cfg.seed, 13])
        n = g.n_neurons
        cell = detailed_cell()
        rotations = np.stack([np.zeros(n), np.zeros(n), 2 * np.pi * rng.random(n)], axis=1)
        net = dx.Network.replicate(cell, n, positions=g.positions, rotations=rotations)
        self.n_compartments = sum(c.n_nodes for c in net.cells)
        # recurrent connections
        for t_pre in CELL_TYPES:
            for t_post in CELL_TYPES:
                pair = t_pre + t_post
                pre = np.flatnonzero(g.cell_type == t_pre)
                post = np.flatnonzero(g.cell_type == t_post)
                if not pre.size or not post.size:
                    continue
                p = np.full((pre.size, post.size), con[f"p_{pair}"])
                same = g.column[pre][:, None] == g.column[post][None, :]
                lp, lq = g.layer[pre][:, None], g.layer[post][None, :]
                factor = np.where(lp == lq, 1.0, con["inter_layer"])
                for key, f in con["layer_pairs"].items():
                    src, dst = (s.strip() for s in key.split("->"))
                    factor = np.where((lp == src) & (lq == dst), f, factor)
                p = p * np.where(same, factor, con["inter_column"])
                if np.any(p > 1.0):
                    raise ValueError(probability_too_high(
                        pair, p.max(), within=bool(np.any((p > 1.0) & same)),
                        between=bool(np.any((p > 1.0) & ~same))))
                draw = rng.random(p.shape) < p
                if not con["autapses"]:
                    draw &= pre[:, None] != post[None, :]
                if not draw.any():
                    continue
                site = cell.section(OBLIQUE)(0.5) if t_pre == "E" else cell.soma(0.5)
                net.connect_matrix(draw, "Exp2Syn", pre=pre, post=post, post_loc=site,
                                   weight=con[f"w_{pair}"], delay=con["delay_ms"],
                                   threshold=SPIKE_THRESHOLD, tau1=TAU1, tau2=TAU2,
                                   e=E_REV[t_pre])
        # drive
        key = jax.random.PRNGKey(cfg.seed)
        for i in range(n):
            t = g.cell_type[i]
            if drive["mean"][t] != 0.0:
                net.cell(i).iclamp(net.cell(i).soma(0.5), delay=0.0, dur=1e9,
                                   amp=drive["mean"][t])
            if drive["rate_hz"][t] > 0 and drive["weight"][t] > 0:
                for k, sec in enumerate((TUFT, BASAL)):
                    src = net.poisson_source(drive["rate_hz"][t],
                                             jax.random.fold_in(key, 2 * i + k),
                                             stop=cfg.duration_ms)
                    net.connect(src, net.cell(i).section(sec)(0.5), "Exp2Syn",
                                weight=drive["weight"][t], delay=0.0, tau1=TAU1, tau2=TAU2,
                                e=0.0)
        # recordings
        modes = cfg.probe.modes
        net.record_spikes(threshold=SPIKE_THRESHOLD)
        for i in range(n):
            net.record("v", net.cell(i).soma(0.5))
        self.electrodes = Electrodes(g.electrodes, sigma=0.3, method="linesource")
        if any(m in modes for m in ("LFP", "CSD")):
            net.record_extracellular(self.electrodes, "lfp")
        self.dipoles = []
        if any(m in modes for m in ("EEG", "MEG")):
            for c, name in enumerate(g.column_names):
                cells = np.flatnonzero(g.column == c)
                net.record_dipole(f"dipole_{c}", cells=cells.tolist())
                self.dipoles.append(f"dipole_{c}")
        self.network = net

    def base_params(self):
        return self.network.params

    def params_with(self, values, base=None):
        raise ValueError("multicompartment columns have no fit parameters here; use "
                         "dendrax.training on model.network")

    def run(self, params, duration, dt, seed):
        """Signals of one run (``Model.run``)."""
        import jax.numpy as jnp

        import dendrax as dx
        from ..extracellular import csd, eeg_four_sphere

        model, g, cfg = self.model, self.model.geometry, self.model.cfg
        modes = cfg.probe.modes
        # the Poisson drive was drawn when the model was built, from the configuration's
        # seed and up to its duration: other run settings would silently not apply
        if duration > cfg.duration_ms * (1 + 1e-12):
            raise ValueError(f"a multicompartment column's Poisson drive was drawn up to its "
                             f"configuration's duration ({cfg.duration_ms:g} ms) when it was "
                             f"built: run at most that long (got {duration:g} ms), or build it "
                             "with .runtime(duration_ms=...)")
        if seed != cfg.seed:
            raise ValueError(f"a multicompartment column's Poisson drive was drawn from its "
                             f"configuration's seed ({cfg.seed}) when it was built: build it "
                             f"with .runtime(seed={seed}) to run another seed")
        res = dx.simulate(self.network, duration, dt, params=params, celsius=CELSIUS,
                          v_init=V_INIT, key=seed)
        n, n_steps = g.n_neurons, int(round(duration / dt))
        v = res.traces[:n, 1:].T
        spikes = np.zeros((n_steps, n))
        for q, times in zip(res.spike_cells, res.spikes):
            k = np.round(np.asarray(times) / dt).astype(int) - 1
            k = k[(k >= 0) & (k < n_steps)]
            spikes[k, q] = 1.0
        t = np.arange(1, n_steps + 1) * dt
        physical = {}
        if "LFP" in modes or "CSD" in modes:
            lfp = res["lfp"][:, 1:]  # [E, T] uV
            if "LFP" in modes:
                physical["LFP"] = (lfp.T, "uV")
            if "CSD" in modes:
                parts = []
                for c in range(len(g.column_names)):
                    mine = np.flatnonzero(g.electrode_column == c)
                    parts.append(csd(lfp[mine], g.electrodes[mine, 2], sigma=0.3,
                                     method="standard", vaknin=False))
                physical["CSD"] = (jnp.concatenate(parts, axis=0).T, "uA/mm^3")
        if "EEG" in modes or "MEG" in modes:
            eeg = 0.0
            scalp = self.scalp_electrodes()
            moments, locations = [], []
            for c, name in enumerate(self.dipoles):
                # about the column's centre, where the signals put the dipole: the IClamp
                # drive's net current (no return path in the model) would make it depend
                # on the coordinates' origin
                p = res[name][:, 1:] - self.drive_current(c) * self.dipole_location(c)[:, None]
                if "EEG" in modes:
                    eeg = eeg + eeg_four_sphere(jnp.asarray(self.head_rotation(c)) @ p,
                                                self.head_location(c), scalp)
                moments.append(p)
                locations.append(self.dipole_location(c))
            if "EEG" in modes:
                physical["EEG"] = (eeg.T, "uV")
            if "MEG" in modes:
                physical["MEG"] = (azimuthal_meg(moments, locations, g.meg_sensors).T, "fT")
        return model.derive(t, spikes=jnp.asarray(spikes), V_m=v, I_syn=None, dt=dt,
                            duration=duration, seed=seed, physical=physical)

    def drive_current(self, c) -> float:
        """nA: the net IClamp current into column c's cells (the membrane currents sum to
        it, by Kirchhoff's law)."""
        g, drive = self.model.geometry, self.model.cfg.drive_values()
        return float(sum(drive["mean"][g.cell_type[i]] for i in np.flatnonzero(g.column == c)))

    def dipole_location(self, c):
        """[3] um: column c's centre (the dipole's location) in column coordinates."""
        g = self.model.geometry
        z = g.electrodes[g.electrode_column == c, 2]
        return np.array([*g.electrodes[g.electrode_column == c][0, :2], 0.5 * (z.min() + z.max())])

    def head_rotation(self, c):
        """[3, 3]: column c's coordinates into the head's. The column stands radially: its
        axis (z) along the radius through its centre's place on the pia sphere, reached by
        an arc of length |(x, y)| from the top of the head towards (x, y) (so that every
        column's pia is PIA_DEPTH_UM below the brain's surface, wherever its centre)."""
        from ..extracellular import RADII

        x, y = self.dipole_location(c)[:2]
        theta, phi = np.hypot(x, y) / (RADII[0] - PIA_DEPTH_UM), np.arctan2(y, x)
        cp, sp, ct, st = np.cos(phi), np.sin(phi), np.cos(theta), np.sin(theta)
        rz = np.array([[cp, -sp, 0.0], [sp, cp, 0.0], [0.0, 0.0, 1.0]])
        ry = np.array([[ct, 0.0, st], [0.0, 1.0, 0.0], [-st, 0.0, ct]])
        return rz @ ry @ rz.T

    def head_location(self, c):
        """[3] um: column c's centre in head coordinates (its pia PIA_DEPTH_UM below the
        brain sphere's surface, the column radial: ``head_rotation``)."""
        from ..extracellular import RADII

        col = self.model.cfg.columns[c]
        radius = RADII[0] - PIA_DEPTH_UM - col.depth_um + self.dipole_location(c)[2]
        return self.head_rotation(c) @ np.array([0.0, 0.0, radius])

    def scalp_electrodes(self):
        """[C, 3] um: an EEG electrode on the scalp above each column (head coordinates)."""
        from ..extracellular import RADII

        return np.asarray([self.head_rotation(c) @ np.array([0.0, 0.0, RADII[3]])
                           for c in range(len(self.model.cfg.columns))])


def build_detailed(model) -> DetailedColumn:
    """The detailed network of a multicompartment ``Model``."""
    return DetailedColumn(model)
