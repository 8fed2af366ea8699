"""`dendrax column config.toml` writes a raster, LFP / CSD heat maps and the readouts."""

import json

from dendrax.cli import main

TOML = """
save_signals = true

[runtime]
seed = 1
duration_ms = 50.0
dt_ms = 0.5

[[column]]
name = "A"
layers = {"L2/3" = 0.5, "L5" = 0.5}
n = 30

[emitter]
family = "izhikevich"
preset = "chattering"

[drive]
mean = {E = 8.0, I = 4.0}

[probes]
modes = ["SPK", "Vm", "LFP-proxy", "CSD-proxy"]
electrodes = 5

[[readout]]
name = "rate"
metric = "spike_rate_hz"

[[readout]]
name = "vm_L5"
metric = "mean_V_m"
layer = "L5"
"""


def test_column_cli(tmp_path, capsys):
    cfg = tmp_path / "col.toml"
    cfg.write_text(TOML)
    out = tmp_path / "out"
    assert main(["column", str(cfg), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"raster.png", "lfp.png", "csd.png",
                                              "readouts.json", "signals.json"}
    data = json.loads((out / "readouts.json").read_text())
    assert data["results"]["rate"] > 0 and data["units"]["vm_L5"] == "mV"
    assert data["signal_units"]["LFP"] == "proxy"
    assert data["configuration"]["emitter"]["preset"] == "chattering"
    assert "rate = " in capsys.readouterr().out


def test_column_cli_bad_config(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(TOML.replace('preset = "chattering"', 'preset = "resonator"'))
    assert main(["column", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'resonator'" in err and "tonic_spiking" in err
    cfg.write_text(TOML + "\n[extras]\nx = 1\n")
    assert main(["column", str(cfg)]) == 2
    assert "unknown keys ['extras']" in capsys.readouterr().err
    for extra, needle in (('save_signals = "no"\n', "save_signals must be true or false"),
                          ('out = 1\n', "out must be a folder name"),
                          ('readout = 5\n', "readouts are an array of tables")):
        body = TOML.replace("save_signals = true\n", "")
        if "readout" in extra:
            body = body.split("[[readout]]")[0]
        cfg.write_text(extra + body)
        assert main(["column", str(cfg)]) == 2
        assert needle in capsys.readouterr().err, needle
    cfg.write_text(TOML + '\n[[readout]]\nname = "r2"\nmetric = "mean_V_m"\nlayr = "L4"\n')
    assert main(["column", str(cfg)]) == 2
    assert "[[readout]] 'r2' has unknown keys ['layr']" in capsys.readouterr().err


def test_column_cli_refuses_bad_layers_and_readouts_before_running(tmp_path, capsys):
    """`layers = 5` (a TypeError traceback, exit 1) and a readout of an unknown layer (found
    after the run, raster.png already written) are one line and exit 2, nothing written."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text(TOML.replace('layers = {"L2/3" = 0.5, "L5" = 0.5}', "layers = 5"))
    assert main(["column", str(cfg), "--out", str(tmp_path / "a")]) == 2
    assert "layers must be a layer name, a list" in capsys.readouterr().err
    cfg.write_text(TOML.replace('layer = "L5"', 'layer = "L6"'))
    out = tmp_path / "b"
    assert main(["column", str(cfg), "--out", str(out)]) == 2
    assert "unknown layer 'L6'" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
