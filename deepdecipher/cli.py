"""The ``deepdecipher`` command: materialize the pipeline, serve the API, or both (``up``).

``materialize`` runs the same Dagster assets as the UI, in this process, against the Dagster
instance in ``$DAGSTER_HOME`` (default ``./.dagster_home``), so its runs show up in the Dagster UI.
Heavy imports (torch, dagster) happen inside the commands: ``serve`` never loads them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

NO_INFERENCE = "do not start the inference process (live activation routes answer 503)"


def _configure(args: argparse.Namespace) -> None:
    """Export data root and registry so every process (runs, UI, API) agrees on them."""
    if args.data_root:
        os.environ["DEEPDECIPHER_DATA_ROOT"] = args.data_root
    if args.registry:
        os.environ["DEEPDECIPHER_REGISTRY"] = str(Path(args.registry).resolve())
    from deepdecipher import dagster_home

    home = Path(os.environ.get("DAGSTER_HOME", ".dagster_home")).resolve()
    dagster_home.prepare(home)  # SQLite in DAGSTER_HOME, or PostgreSQL with DAGSTER_PG_URL
    os.environ["DAGSTER_HOME"] = str(home)


def materialize(models: list[str] | None, force: bool) -> None:
    import dagster as dg
    from tqdm import tqdm

    from dagster_project.runner import materialize_models
    from dd_assets.assets import _common
    from dd_assets.settings import data_root, registry_path

    print(f"data root: {data_root()}\nregistry:  {registry_path()}")
    print(f"dagster:   {os.environ['DAGSTER_HOME']}", flush=True)
    bars: dict[str, tqdm] = {}

    def on_progress(what: str, done: int, total: int) -> None:
        bar = bars.get(what)
        if bar is None:
            bar = bars[what] = tqdm(
                total=total, desc=what, unit="doc" if "documents" in what else "step"
            )
        bar.n = done
        bar.refresh()
        if done >= total:  # a later model starts a fresh bar of the same name
            bars.pop(what).close()

    _common.progress_hook = on_progress
    try:
        report = materialize_models(
            dg.DagsterInstance.get(),
            str(registry_path()),
            data_root(),
            models,
            force,
            on_stage=lambda msg: print(msg, flush=True),
            layer_iter=tqdm,
        )
    finally:
        _common.progress_hook = None
    for name in report.skipped:
        print(f"[{name}] model-level assets were already materialized (--force recomputes them)")
    print(f"done: {len(report.model_runs)} model runs, {len(report.layer_runs)} layer runs")


def serve(host: str, port: int, workers: int = 1, inference: bool = True) -> None:
    import uvicorn

    from dd_infer.launch import inference_service  # stdlib only: the API stays free of torch

    with inference_service(inference):
        if workers > 1:  # each worker process keeps its own partition cache
            uvicorn.run(
                "dd_api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning",
            )  # fmt: skip
            return
        from dd_api.app import create_app

        uvicorn.run(create_app(), host=host, port=port, log_level="warning")


def up(args: argparse.Namespace) -> None:
    """Materialize, then run the API and the Dagster UI until interrupted."""
    materialize(args.model or None, args.force)

    from deepdecipher.supervise import start_child, wait_until_signalled

    exe = sys.executable
    serve_args = ["serve", "--host", args.host, "--port", str(args.port)]
    if args.no_inference:
        serve_args.append("--no-inference")
    api = start_child([exe, "-m", "deepdecipher.cli", *serve_args])
    ui = start_child(
        [exe, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.ui_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"\nWeb UI:     http://{args.host}:{args.port}/viz")
    print(f"API:        http://{args.host}:{args.port}/api")
    print(
        f"  example:  http://{args.host}:{args.port}/api/{(args.model or ['smollm2-135m'])[0]}/neuroscope/0/0"
    )
    print(f"API docs:   http://{args.host}:{args.port}/schema/swagger")
    print(f"Dagster UI: http://{args.host}:{args.ui_port}\nCtrl-C stops both.", flush=True)
    wait_until_signalled([api, ui])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deepdecipher", description=__doc__)
    parser.add_argument("--data-root", help="folder or deltalake URI (env DEEPDECIPHER_DATA_ROOT)")
    parser.add_argument("--registry", help="model registry YAML (env DEEPDECIPHER_REGISTRY)")
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser("materialize", help="compute every registered model's data")
    m.add_argument("--model", action="append", help="only this model (repeatable)")
    m.add_argument("--force", action="store_true", help="recompute partitions already present")

    s = sub.add_parser("serve", help="serve the read-only API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    s.add_argument("--no-inference", action="store_true", help=NO_INFERENCE)

    u = sub.add_parser("up", help="materialize, then serve the API and the Dagster UI")
    u.add_argument("--model", action="append")
    u.add_argument("--force", action="store_true")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, default=8000)
    u.add_argument("--ui-port", type=int, default=3000)
    u.add_argument("--no-inference", action="store_true", help=NO_INFERENCE)

    args = parser.parse_args(argv)
    _configure(args)
    if args.command == "materialize":
        try:
            materialize(args.model, args.force)
        except KeyError as exc:  # an unknown --model
            parser.exit(2, f"deepdecipher: {exc.args[0]}\n")
    elif args.command == "serve":
        serve(args.host, args.port, args.workers, not args.no_inference)
    else:
        up(args)


if __name__ == "__main__":
    main()
