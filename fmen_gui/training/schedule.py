"""The learning-rate, patch and loss schedule: a list of stages, each one cosine cycle.

Small SR networks are trained with L1 first, then a short L2 (MSE) fine-tune at a low rate;
larger patches late in the run (more context for the 34–46 px receptive radius, at more cost
per step); and cosine restarts. A schedule is a tuple of :class:`Stage` so that the state of
a run is its step alone: resuming at step *n* lands in the same stage, patch and rate.

Written as text for the command line and the run record: ``l1:6000@32:5e-4,l2:3000@48:2e-5``
(loss:steps@patch:peak rate, stages in order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOSSES = ("l1", "l2")
MIN_LR = 1e-6
WARMUP = 100  # steps of linear warm-up at the start of every stage (a restart)


@dataclass(frozen=True)
class Stage:
    loss: str
    steps: int
    patch: int  # low-resolution patch side
    lr: float  # peak learning rate of this cycle

    def __str__(self) -> str:
        return f"{self.loss}:{self.steps}@{self.patch}:{self.lr:g}"


Schedule = tuple[Stage, ...]


def parse(text: str) -> Schedule:
    """``l1:6000@32:5e-4,l2:3000@48:2e-5`` → stages; a clear ValueError otherwise."""
    stages = []
    for part in text.split(","):
        try:
            loss, rest = part.strip().split(":", 1)
            steps, rest = rest.split("@", 1)
            patch, lr = rest.split(":", 1)
            stage = Stage(loss.lower(), int(steps), int(patch), float(lr))
        except ValueError:
            raise ValueError(
                f"bad stage {part!r}: expected LOSS:STEPS@PATCH:LR, e.g. l1:6000@32:5e-4"
            ) from None
        if stage.loss not in LOSSES or stage.steps <= 0 or stage.patch < 8 or not 0 < stage.lr < 1:
            raise ValueError(f"bad stage {part!r}: loss l1|l2, steps > 0, patch ≥ 8, 0 < lr < 1")
        stages.append(stage)
    return tuple(stages)


def format_schedule(schedule: Schedule) -> str:
    return ",".join(map(str, schedule))


def total_steps(schedule: Schedule) -> int:
    return sum(s.steps for s in schedule)


def stage_at(schedule: Schedule, step: int) -> tuple[Stage, int]:
    """The stage that step ``step`` (0-based) belongs to, and the step within it.

    Past the end, the last stage's final step (a finished run trains no further).
    """
    for stage in schedule:
        if step < stage.steps:
            return stage, step
        step -= stage.steps
    return schedule[-1], schedule[-1].steps - 1


def lr_at(schedule: Schedule, step: int) -> float:
    """Linear warm-up, then cosine from the stage's peak down to :data:`MIN_LR`."""
    stage, i = stage_at(schedule, step)
    warm = min(WARMUP, stage.steps // 4)
    if i < warm:
        return stage.lr * (i + 1) / warm
    t = (i - warm) / max(1, stage.steps - warm)
    return MIN_LR + 0.5 * (stage.lr - MIN_LR) * (1 + math.cos(math.pi * min(1.0, t)))


def finetune_schedule(model: str, scale: int, third_cycle: bool = False) -> Schedule:
    """The campaign's recipe for continuing trained weights in the deploy form.

    The shipped networks already learned the coarse mapping, so no 5e-4 cycle: L1 cycles at
    1e-4 then 5e-5 with the larger patches (2e-4 was measured first: 150 steps at that rate
    cost the EMA 0.38 dB on the held-out slice) (more context for the receptive field), then
    the L2 fine-tune. Patches are in LR pixels; one deploy-form step of FMEN-S ×4 at 40 px is
    about 1.1 s on a 2-core CPU, so a session's idle CPU is a few thousand steps.

    Cycles of 4,000 steps, not 20,000: each ends annealed, so the EMA reaches the low-rate
    optimum within a session or two. The first photo run (a 20,000-step cycle) showed why: its
    validation flattened at +0.003 dB per 250 steps from step 2,000 to 5,141 while the rate was
    still 0.85–1.0e-4: the noise floor of that rate, not of the network. Of the raw weights at
    step 550 of the second photo run, the clean slice scored 26.93 dB against its EMA's 27.59.

    A second generation follows the first L2 fine-tune: one long L1 cycle at a higher peak
    (2e-4) on the patch the field trains these networks with (64 LR px at ×3/×4, 96 at ×2; the
    paper's ×4 HR patch is 256), then the L2 fine-tune again. Why: the first generation's short
    cycles at 5e-5 stopped paying (FMEN-S ×4's third cycle: 35.483 dB on the unseen
    photographs at its start, 35.482 near its end; FMEN ×4's: +0.001), while the networks have
    seen a few thousandths of the authors' training (about 20,000 steps of batch 16 against
    their hundreds of thousands of batch 64). The bet, which this generation measures, is that
    the rate holds them, not the network. The EMA falls while the rate is high (150 steps at
    2e-4 cost it 0.38 dB) and is judged at the annealed end; exports stay only-if-better.
    Added on 2026-12-06, when the first ×4 runs reached the end of the first generation on a
    CPU with native bf16 (3.6 FMEN-S ×4 steps a second, not 0.5). Stages are only ever
    appended, so a run resumes at the same stage, patch and rate (see :func:`resumes_exactly`).

    The first generation's third cycle and its L2 fine-tune (``third_cycle``) are trained only
    by the runs that had begun them when they were dropped (2026-12-06 night: FMEN-S ×4,
    FMEN ×4, FMEN-S ×3), since dropping a stage that a run has begun moves it, at the same
    step, into another stage. Why dropped: on FMEN-S ×4 they gave +0.001 and +0.009 dB on the
    unseen photographs in 7,000 steps, the 2e-4 cycle after them +0.12 in 5,500; every other
    run goes from its second cycle straight to the second generation.
    """
    p = {2: (48, 64, 96), 3: (40, 48, 64), 4: (40, 48, 64)}[scale]
    first = (Stage("l1", 4000, p[0], 1e-4), Stage("l1", 4000, p[1], 5e-5))
    if third_cycle:
        first += (Stage("l1", 4000, p[1], 5e-5), Stage("l2", 3000, p[1], 1e-5))
    second = (
        Stage("l1", 12000, p[2], 2e-4),
        Stage("l2", 3000, p[2], 1e-5),
    )
    return first + second


def resumes_exactly(old: Schedule, new: Schedule, step: int) -> bool:
    """Whether a run at ``step`` that trained under ``old`` goes on exactly under ``new``.

    True when every stage begun before ``step`` is the same in both: its steps, patches and
    rates are then the ones it had, and only what is still to come may differ (stages
    appended, or a later stage changed). Why it matters: a run resumes from its step alone.
    """
    begun, start = 0, 0
    for stage in old:
        if start >= step:
            break
        begun += 1
        start += stage.steps
    return new[:begun] == old[:begun]


def default_schedule(model: str, scale: int) -> Schedule:
    """The campaign's recipe: three L1 cycles with growing patches, then an L2 fine-tune.

    Patch sides are in LR pixels and shrink with the scale so that an HR patch stays
    96–192 px. The step counts are sized for a 2-core CPU (≈2 s a step for FMEN-S ×4 at
    32 px in fp32): a run is days of idle CPU, resumable at any step.
    """
    p = {2: (48, 64, 96), 3: (32, 48, 64), 4: (32, 40, 48)}[scale]
    return (
        Stage("l1", 8000, p[0], 5e-4),
        Stage("l1", 16000, p[1], 3e-4),
        Stage("l1", 24000, p[2], 2e-4),
        Stage("l2", 6000, p[2], 2e-5),
    )
