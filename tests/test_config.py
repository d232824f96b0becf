import pytest

from nninteractive_train.config import ConfigError, from_dict, load_config, save_config, to_dict


def test_defaults_are_the_paper():
    cfg = load_config(None)
    assert cfg.model.patch_size == [192, 192, 192]
    assert cfg.model.global_batch_size == 24
    assert (cfg.training.num_epochs, cfg.training.iterations_per_epoch) == (5000, 250)
    assert cfg.interaction.decay == 0.9
    assert (cfg.interaction.p_followup_start, cfg.interaction.p_followup_end) == (0.3, 0.75)
    assert cfg.data.supervoxel_prob == 0.2
    assert (cfg.training.optimizer, cfg.training.initial_lr) == ("sgd", 1e-2)


@pytest.mark.parametrize("name", ["nninteractive_v1.yaml", "debug_cpu.yaml", "demo_cpu.yaml", "finetune.yaml"])
def test_shipped_configs_load(repo, name):
    load_config(repo / "configs" / name)


def test_overrides_are_typed(repo):
    cfg = load_config(repo / "configs" / "debug_cpu.yaml",
                      ["training.num_epochs=7", "model.patch_size=[16,32,32]", "interaction.decay=0.5"])
    assert cfg.training.num_epochs == 7
    assert cfg.model.patch_size == [16, 32, 32]
    assert cfg.interaction.decay == 0.5


@pytest.mark.parametrize("override, message", [
    ("training.num_epoch=3", "unknown key"),
    ("training.num_epochs=three", "integer"),
    ("model.patch_size=5", "list"),
    ("interaction.decay=1.5", "decay"),
    ("nonsense", "section.key=value"),
    ("interaction.kinds=[click]", "kinds"),
    ("training.optimizer=adam", "optimizer"),
    ("data.object_size_power=.nan", "object_size_power"),
    ("interaction.slice_power=-1", "slice_power"),
    ("model.layout_spacing=[1,1]", "layout_spacing"),
    ("model.layout_spacing=[1,0,1]", "layout_spacing"),
    ("training.ema_decay=1", "ema_decay"),
    ("training.ema_decay=0", "ema_decay"),
])
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_round_trip(tmp_path):
    cfg = load_config(None, ["training.seed=3"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert from_dict(to_dict(cfg)) == cfg
