"""The engine's rooms on their own: schedule, step reduction, health monitor, position."""

import pytest
import torch

from ganforge.config import HealthConfig
from ganforge.training.health import HealthMonitor, mean_pairwise_distance
from ganforge.training.schedule import lr_factor, run_progress
from ganforge.training.state import Position, StepReduction
from ganforge.training.step import StepStats


def test_lr_factor_by_hand():
    assert lr_factor(0.7, "constant") == 1.0
    assert lr_factor(0.0, "linear") == 1.0
    assert lr_factor(0.75, "linear") == pytest.approx(0.25)
    assert lr_factor(0.4, "linear", decay_start=0.5) == 1.0  # before the decay begins
    assert lr_factor(0.75, "linear", decay_start=0.5) == pytest.approx(0.5)
    assert lr_factor(1.0, "linear", decay_start=0.5) == 0.0
    with pytest.raises(ValueError):
        lr_factor(0.5, "exponential")


def test_run_progress_takes_the_sooner_of_steps_and_time():
    assert run_progress(50, 200, elapsed=0, max_minutes=0) == 0.25
    assert run_progress(50, 200, elapsed=1800, max_minutes=60) == 0.5  # time is further along
    assert run_progress(190, 200, elapsed=60, max_minutes=60) == 0.95
    assert run_progress(400, 200, elapsed=0, max_minutes=0) == 1.0


def test_step_reduction_is_named_and_weighted():
    stats = StepStats(torch.tensor(0.5), torch.tensor(2.0), torch.tensor(0.75), torch.tensor(0.0))
    local = StepReduction.local(stats, 4, stop=False, checkpoint=True, over_budget=False,
                                elapsed=12.5)
    # two ranks with the same contribution, summed as an all-reduce would
    red = StepReduction.from_tensor(local + local)
    assert red.examples == 8 and red.checkpoint == 2 and red.stop == 0 and red.elapsed == 25.0
    assert red.means() == pytest.approx((0.5, 2.0, 0.75, 0.0))
    assert [f for f in StepStats.FIELDS] == ["loss_D", "loss_G", "acc_D", "penalty"]


def test_health_d_overpowering_fires_once_after_warmup():
    mon = HealthMonitor(HealthConfig(window=3, d_acc_limit=0.9, warmup_epochs=1), True)
    assert mon.step(0, 1.0) == []  # warm-up epoch: not even counted
    assert mon.step(1, 0.95) == [] and mon.step(1, 0.95) == []
    alarms = mon.step(1, 0.95)
    assert [a[0] for a in alarms] == ["d_overpowering"] and "95.0%" in alarms[0][1]
    assert mon.step(1, 0.95) == []  # not again while it holds
    for _ in range(3):
        mon.step(1, 0.5)
    assert not mon.d_alarm_on  # cleared once D's accuracy falls well below the limit
    critic = HealthMonitor(HealthConfig(window=1), has_accuracy=False)
    assert critic.step(5, 1.0) == []


def test_health_epoch_end_g_loss_and_collapse():
    mon = HealthMonitor(HealthConfig(g_loss_limit=5, collapse_ratio=0.2, warmup_epochs=1), True)
    assert mon.epoch_end(1, 50.0, 0.01) == []  # the warm-up epoch raises nothing
    kinds = [k for k, _ in mon.epoch_end(2, 6.0, 0.1)]
    assert kinds == ["g_loss_divergence", "mode_collapse"]
    assert [k for k, _ in mon.epoch_end(3, 1.0, 0.1)] == []  # collapse already raised
    mon.epoch_end(4, 1.0, 0.5)
    assert [k for k, _ in mon.epoch_end(5, 1.0, 0.1)] == ["mode_collapse"]


def test_health_waits_for_warmup_kimg_too():
    """A small folder's epochs are short: health.warmup_kimg holds the alarms until that many
    images were seen, whatever the epoch."""
    mon = HealthMonitor(HealthConfig(collapse_ratio=0.2, warmup_epochs=1, warmup_kimg=10,
                                     window=1, d_acc_limit=0.9), True)
    assert mon.epoch_end(5, 1.0, 0.01, images_seen=9_999) == []
    assert mon.step(5, 1.0, images_seen=9_999) == []
    assert [k for k, _ in mon.epoch_end(6, 1.0, 0.01, images_seen=10_000)] == ["mode_collapse"]
    assert [k for k, _ in mon.step(6, 1.0, images_seen=10_000)] == ["d_overpowering"]


def test_mean_pairwise_distance_by_hand():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert mean_pairwise_distance(x) == pytest.approx(5.0)
    assert mean_pairwise_distance(x[:1]) == 0.0


def test_position_round_trip_and_epoch_rewind():
    pos = Position.start(seed=3)
    pos.begin_epoch()
    first = torch.randperm(10, generator=pos.order_gen)
    pos.step_in_epoch, pos.seen, pos.retries, pos.best = 2, 16, 1, (1, 3.5, "eval_w2")
    pos.sums += torch.tensor([1.0, 2.0, 3.0, 4.0])
    st = pos.state_dict(elapsed=9.0, lr_G=0.1, lr_D=0.2)
    other = Position.start(seed=99)
    other.load_state_dict(st)
    assert (other.step_in_epoch, other.seen, other.retries, other.elapsed) == (2, 16, 1, 9.0)
    assert other.best == (1, 3.5, "eval_w2") and other.means()["loss_G"] == pytest.approx(2 / 16)
    other.begin_epoch()  # mid-epoch: the same permutation again
    assert torch.equal(torch.randperm(10, generator=other.order_gen), first)
