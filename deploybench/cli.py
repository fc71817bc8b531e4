"""`deploybench` command line: one thin command per stage (see README for the contract)."""
from __future__ import annotations

import json
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Optional

import click

from .config import DEFAULT_CONFIG, BenchConfig, Config, load_config
from .errors import DeployBenchError
from .formats import PRECISIONS
from .workdir import Workdir

CONFIG_OPT = click.option("-c", "--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
                          type=click.Path(dir_okay=False), help="Experiment YAML.")
WORKDIR_OPT = click.option("--workdir", type=click.Path(file_okay=False), default=None,
                           help="Where checkpoints/, engines/, reports/ live (default: config's workdir, or .).")


def _load(config_path: str, workdir: Optional[str]) -> Config:
    cfg = load_config(config_path)
    if workdir:
        cfg.workdir = workdir
    return cfg


def _results_db(cfg_or_root) -> Path:
    return Workdir(cfg_or_root.root if isinstance(cfg_or_root, Config) else cfg_or_root).results_db


def _pipeline(cfg: Config, stages: tuple[str, ...], backbones=(), executor=None, workers=None, address=None,
              **options) -> None:
    from .sweep.plan import plan
    from .sweep.runner import run_pipeline
    from .validate import check_backbones, check_batch_sizes, check_config, check_formats, check_runtimes

    check_config(cfg, stages)
    check_backbones(cfg, backbones)
    check_runtimes(options.get("runtimes") or ())
    check_formats(options.get("formats") or ())
    if options.get("batch_sizes"):
        check_batch_sizes(options["batch_sizes"], "--batch-size")
    runs = plan(cfg, tuple(backbones))
    if not runs:
        raise DeployBenchError(f"{cfg.source}: no runs to do (check backbones/datasets/--backbone)")
    summary = run_pipeline(cfg, runs, stages=stages, executor=executor or cfg.sweep.executor,
                           workers=workers or cfg.sweep.workers, address=address or cfg.sweep.address, **options)
    click.echo(summary.render())
    if summary.failed and all(summary.failed_all(stage) for stage in stages):
        raise DeployBenchError(f"every run failed in stage(s) {', '.join(stages)}; see the reasons above")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deploybench")
def cli() -> None:
    """Which vision backbone should I deploy on this device?"""


@cli.command()
@CONFIG_OPT
@WORKDIR_OPT
@click.option("--backbone", "backbones", multiple=True, help="Only these backbones (repeatable).")
def finetune(config_path, workdir, backbones):
    """Fine-tune every run of the config (resumable; finished runs are skipped)."""
    _pipeline(_load(config_path, workdir), ("finetune",), backbones)


@cli.command()
@CONFIG_OPT
@WORKDIR_OPT
@click.option("--backbone", "backbones", multiple=True)
@click.option("--precision", "precisions", multiple=True, type=click.Choice(PRECISIONS))
@click.option("--format", "formats", multiple=True,
              help="An export format of the runtime registry, e.g. onnx (repeatable; a wrong name lists them).")
def export(config_path, workdir, backbones, precisions, formats):
    """Export checkpoints to ONNX fp32/fp16/int8, OpenVINO IR, TensorRT engines (and the registry's other
    formats), with parity checks."""
    _pipeline(_load(config_path, workdir), ("export",), backbones,
              formats=list(formats) or None, precisions=list(precisions) or None)


@cli.command()
@CONFIG_OPT
@WORKDIR_OPT
@click.option("--backbone", "backbones", multiple=True)
@click.option("--runtime", "runtimes", multiple=True, help="torch, onnxruntime-cpu, openvino, ... (repeatable)")
@click.option("--batch-size", "batch_sizes", multiple=True, type=int)
@click.option("--threads", type=int, default=None, help="Intra-op threads (default: config).")
@click.option("--device", "device", default=None, help="Label for this device in results (e.g. jetson-orin).")
@click.option("--executions", type=click.IntRange(min=1), default=None,
              help="Executions per configuration, interleaved (default: config; 1 keeps no worker alive).")
@click.option("--model", "model", type=click.Path(dir_okay=False), default=None,
              help="Bring your own ONNX file instead of the config's runs.")
@click.option("--input-size", default=None, help="CxHxW for --model, e.g. 3x224x224.")
@click.option("--mean", default="0.485,0.456,0.406", show_default=True, help="For --model.")
@click.option("--std", default="0.229,0.224,0.225", show_default=True, help="For --model.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="For --model accuracy: a folder of class folders, or an ImageFolder root with test/.")
def bench(config_path, workdir, backbones, runtimes, batch_sizes, threads, device, executions, model, input_size,
          mean, std, data_dir):
    """Benchmark every exported artifact on every runtime: accuracy, latency, throughput, memory, size."""
    cfg = _load(config_path, workdir) if (model is None or Path(config_path).exists()) else None
    if model is not None:
        bcfg = cfg.bench if cfg is not None else BenchConfig()
        _overrides(bcfg, threads, executions)
        _bench_model(cfg, bcfg, workdir, model, input_size, mean, std, data_dir, runtimes, batch_sizes, device)
        return
    _overrides(cfg.bench, threads, executions)
    _pipeline(cfg, ("bench",), backbones, runtimes=list(runtimes) or None,
              batch_sizes=list(batch_sizes) or None, device=device)
    _export_csv(cfg.root)


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise DeployBenchError(f"--{name}: expected comma-separated numbers, got {text!r}") from None


def _overrides(bcfg: BenchConfig, threads, executions) -> None:
    if threads is not None:
        bcfg.threads = threads
    if executions is not None:
        bcfg.latency.executions = executions


def _bench_model(cfg, bcfg, workdir, model, input_size, mean, std, data_dir, runtimes, batch_sizes, device):
    from .bench import bench_model
    from .store import ResultStore

    if not input_size:
        raise DeployBenchError("--model needs --input-size CxHxW (e.g. 3x224x224)")
    try:
        shape = tuple(int(v) for v in input_size.lower().split("x"))
        assert len(shape) == 3
    except (ValueError, AssertionError):
        raise DeployBenchError(f"--input-size: expected CxHxW like 3x224x224, got {input_size!r}") from None
    from .validate import check_runtimes

    if runtimes:
        bcfg.runtimes = list(runtimes)
    check_runtimes(bcfg.runtimes)
    if batch_sizes:
        bcfg.batch_sizes = list(batch_sizes)
    root = Path(workdir) if workdir else (cfg.root if cfg is not None else Path("."))
    rows = bench_model(Path(model), input_size=shape, mean=_floats(mean, "mean"), std=_floats(std, "std"),
                       data_dir=Path(data_dir) if data_dir else None, cfg=bcfg, runtimes=bcfg.runtimes,
                       device=device)
    ResultStore(_results_db(root)).add(rows)
    _export_csv(root)
    for r in rows:
        click.echo(f"{r['runtime']:<18} {r['precision'] or '':<5} bs={r['batch_size']} {r['status']:<7} "
                   f"p50={r['latency_ms_p50']} ms top1={r['top1']} {r['status_reason'] or ''}")


def _export_csv(root: Path) -> None:
    from .store import ResultStore

    db = _results_db(root)
    if db.exists():
        ResultStore(db).export_csv(db.with_suffix(".csv"))


@cli.command()
@CONFIG_OPT
@WORKDIR_OPT
def report(config_path, workdir):
    """Write reports/report.md, report.html and plots/*.png from reports/results.db."""
    from .report import write_report
    from .store import ResultStore

    cfg = _load(config_path, workdir)
    db = _results_db(cfg)
    if not db.exists():
        raise DeployBenchError(f"{db}: no results yet (run `deploybench bench` first)")
    store = ResultStore(db)
    store.export_csv(db.with_suffix(".csv"))
    paths = write_report(store, Workdir(cfg.root).reports_dir, cfg)
    for name, path in paths.items():
        click.echo(f"{name}: {path}")


@cli.command()
@WORKDIR_OPT
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="Results db (default reports/results.db).")
@click.option("--max-latency-ms", type=float)
@click.option("--max-p99-ms", type=float)
@click.option("--max-size-mb", type=float)
@click.option("--max-mem-mb", type=float)
@click.option("--min-top1", type=float)
@click.option("--device")
@click.option("--runtime")
@click.option("--precision")
@click.option("--dataset")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def select(workdir, db, as_json, **constraints):
    """Rank the measured choices that meet the constraints, and say why the others are out."""
    from .report.select import select as do_select
    from .store import ResultStore

    path = Path(db) if db else _results_db(Path(workdir or "."))
    if not path.exists():
        raise DeployBenchError(f"{path}: no results yet (run `deploybench bench` or pass --db)")
    selection = do_select(ResultStore(path).rows(), **constraints)
    click.echo(json.dumps(selection.to_dict(), indent=2) if as_json else selection.render())
    if not selection.candidates:
        sys.exit(1)


@cli.command()
@WORKDIR_OPT
@click.argument("others", nargs=-1, required=True, type=click.Path(dir_okay=False))
def merge(workdir, others):
    """Fold results from other machines (their results.db) into reports/results.db, without duplicates."""
    from .store import ResultStore

    root = Path(workdir or ".")
    store = ResultStore(_results_db(root))
    counts = store.merge([Path(o) for o in others])
    store.export_csv(_results_db(root).with_suffix(".csv"))
    click.echo(f"merged {len(others)} file(s) into {_results_db(root)}: {counts}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.argument("pattern", default="*")
def backbones(as_json, pattern):
    """The backbone registry: name, family, params (1000-class head), GMACs at 224, weight sources with the
    ImageNet top-1 % of those whose library states it (torchvision's weights metadata)."""
    import dataclasses

    from .backbones import get_backbone, list_backbones
    from .backbones.registry import imagenet_top1_by_source

    infos = [get_backbone(n) for n in list_backbones(pattern)]
    top1 = {i.name: imagenet_top1_by_source(i.name) for i in infos}
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(i) | {"imagenet_top1": top1[i.name]} for i in infos], indent=2))
        return
    click.echo(f"{'name':<20} {'family':<14} {'library':<12} {'params_m':>8} {'gmacs@224':>9}  "
               "weights (ImageNet top-1 % where known)")
    for i in infos:
        sources = ", ".join(s if t is None else f"{s} {t:.2f}" for s, t in top1[i.name].items())
        click.echo(f"{i.name:<20} {i.family:<14} {i.library:<12} {i.params_m:>8.1f} {i.gmacs_224:>9.2f}  "
                   f"{sources} (default {i.default_weights})")


@cli.command("plan")
@CONFIG_OPT
@WORKDIR_OPT
@click.option("--backbone", "backbones", multiple=True, help="Only these backbones (repeatable).")
def plan_cmd(config_path, workdir, backbones):
    """Dry run: list every run of the config and check dataset folders against expected counts; trains nothing."""
    from .sweep.plan import plan, render_plan

    cfg = _load(config_path, workdir)
    click.echo(render_plan(cfg, plan(cfg, tuple(backbones))))


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def doctor(as_json):
    """Device, runtimes available (and why not), library versions, what was verified where."""
    from .doctor import collect, render

    info = collect()
    click.echo(json.dumps(info, indent=2) if as_json else render(info))


@cli.command()
@CONFIG_OPT
@WORKDIR_OPT
@click.option("--backbone", "backbones", multiple=True)
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None, help="Default: config sweep.executor.")
@click.option("--workers", type=int, default=None, help="Local worker processes for finetune/export.")
@click.option("--address", default=None, help="Ray cluster address (default: start a local instance).")
def sweep(config_path, workdir, backbones, executor, workers, address):
    """Run finetune, export and bench for every run of the config (resumable, fault-isolated), then report."""
    cfg = _load(config_path, workdir)
    _pipeline(cfg, ("finetune", "export", "bench"), backbones, executor=executor, workers=workers, address=address)
    _export_csv(cfg.root)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except DeployBenchError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:       # one line, like every other bad input
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except Exception as e:             # a real failure: the traceback goes to a log, the console gets one line
        log = Path(tempfile.gettempdir()) / "deploybench-last-error.log"
        log.write_text(traceback.format_exc())
        first = (str(e).strip().splitlines() or [""])[0][:300]
        click.echo(f"error: {type(e).__name__}: {first} (traceback in {log})", err=True)
        sys.exit(1)
