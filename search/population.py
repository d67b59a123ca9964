"""A population-based search's Tuner (search/pbt.py's schedulers, or packs: search/packed.py): the
population drawn, the control beside it, the trainable and the Tune run that trains them. search.tuner
hands in its RunConfig and its trial folders' names (run_config, dirname)."""

from __future__ import annotations

from search.pbt import KEEP_CHECKPOINTS, make_scheduler, members_and_space
from search.plan import Plan
from search.sampling import random_draws
from spaces import get_space, trial_config


def population(plan: Plan) -> tuple[list[dict], dict, dict]:
    """(the control and the drawn members, Tune's param_space holding them, the space's distributions)."""
    draws, distributions = random_draws(get_space(plan.space), plan.population, plan.seed)
    members, param_space = members_and_space(plan.baseline, draws, trial_config(plan.fixed, plan.baseline).to_dict())
    return members, param_space, distributions


def population_tuner(plan: Plan, trainable, extra, run_config, dirname):
    """A pbt or pb2 search (search/pbt.py): Tune's own generator hands out the control and the drawn
    members, every one created at the start (no limit on trials at once: PBT pauses a member at each
    perturbation to let the waiting ones train, and resources bound how many run). Packed
    (search/packed.py): one Tune trial per pack, which decides its members' exploits itself."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from search.callback import ExperimentWriter
    from search.packed import member_checkpoints, split_into_packs
    from search.protocol import PACK
    from search.trackers import make_trackers

    members, param_space, distributions = population(plan)
    control = members[0]
    cfg = trial_config(plan.fixed, plan.baseline)
    writer = ExperimentWriter(plan.experiment, plan.fixed, plan.steps, control, trackers=make_trackers(plan))
    if plan.pack > 1:  # (a pack's checkpoints name its members', of which it keeps as many: search.packed)
        packs = split_into_packs(members, plan.fixed, plan.pack)
        return tune.Tuner(
            trainable, param_space={PACK: tune.grid_search(list(range(len(packs))))},
            tune_config=tune.TuneConfig(trial_dirname_creator=dirname, reuse_actors=True),
            run_config=run_config(plan, writer, extra, member_checkpoints(cfg.keep_checkpoints), packs=packs),
        )
    keep = max(cfg.keep_checkpoints, KEEP_CHECKPOINTS)
    scheduler = make_scheduler(plan.scheduler, plan.experiment, control, distributions, plan.steps,
                               plan.perturb_every * plan.fixed["eval_every"], plan.seed)
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=BasicVariantGenerator(points_to_evaluate=members), scheduler=scheduler,
                                    num_samples=len(members), trial_dirname_creator=dirname,
                                    reuse_actors=plan.resources.inline),
        run_config=run_config(plan, writer, extra, keep),
    )


def pack_trainable(plan: Plan, concurrency: int):
    """The Tune trainable of a packed search (search.packed.run_pack), each pack holding the resources
    of the trials it stands for that run at once: `concurrency` shared among the packs."""
    from ray import tune

    from search.packed import run_pack, split_into_packs
    from search.trial import RestoreFromWhatExists

    members, _, distributions = population(plan)
    packs = split_into_packs(members, plan.fixed, plan.pack)
    fn = tune.with_parameters(run_pack, packs=packs, fixed=plan.fixed, distributions=distributions, control=members[0],
                              interval=plan.perturb_every, seed=plan.seed, experiment_uri=plan.experiment.uri)
    fn.__mixins__ = (RestoreFromWhatExists,)
    share = max(1, min(max(map(len, packs)), concurrency // len(packs)))
    return tune.with_resources(fn, {k: v * share for k, v in plan.resources.per_worker().items()})
