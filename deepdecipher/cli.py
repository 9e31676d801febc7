"""The ``deepdecipher`` command: materialize the pipeline, serve the API, or both (``up``).

``materialize`` runs the same Dagster assets as the UI, in this process, against the Dagster
instance in ``$DAGSTER_HOME`` (default ``./.dagster_home``), so its runs show up in the Dagster UI.
Heavy imports (torch, dagster) happen inside the commands: ``serve`` never loads them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _configure(args: argparse.Namespace) -> None:
    """Export data root and registry so every process (runs, UI, API) agrees on them."""
    if args.data_root:
        os.environ["DEEPDECIPHER_DATA_ROOT"] = args.data_root
    if args.registry:
        os.environ["DEEPDECIPHER_REGISTRY"] = str(Path(args.registry).resolve())
    home = Path(os.environ.get("DAGSTER_HOME", ".dagster_home")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materialize(models: list[str] | None, force: bool) -> None:
    import dagster as dg
    from tqdm import tqdm

    from dagster_project.jobs import ALL_ASSETS, LAYER_ASSETS, MODEL_ASSETS
    from dagster_project.resources import build_resources
    from dd_assets import storage
    from dd_assets.assets import _common
    from dd_assets.partitions import layer_key, layer_partitions, model_partitions
    from dd_assets.registry import load_registry
    from dd_assets.settings import data_root, registry_path
    from dd_assets.tables import MODEL_METADATA

    registry = load_registry(registry_path())
    names = models or registry.names
    for name in names:
        registry[name]  # unknown names fail here, before any work
    instance = dg.DagsterInstance.get()
    resources = build_resources()
    root = data_root()
    print(f"data root: {root}\nregistry:  {registry_path()}\ndagster:   {os.environ['DAGSTER_HOME']}")

    bar: tqdm | None = None

    def on_progress(what: str, done: int, total: int) -> None:
        nonlocal bar
        if bar is None or bar.desc != what:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, desc=what, unit="doc", leave=False)
        bar.n = done
        bar.refresh()

    _common.progress_hook = on_progress
    for name in names:
        known = instance.get_dynamic_partitions(model_partitions.name)
        if name not in known:
            instance.add_dynamic_partitions(model_partitions.name, [name])
        done_models = instance.get_materialized_partitions(dg.AssetKey("model_metadata"))
        if force or name not in done_models:
            start = time.monotonic()
            print(f"[{name}] model-level assets: tokens, activation scan, Neuroscope examples")
            dg.materialize(
                ALL_ASSETS,
                selection=MODEL_ASSETS,
                partition_key=name,
                instance=instance,
                resources=resources,
                run_config=QUIET,
            )
            if bar is not None:
                bar.close()
                bar = None
            print(f"[{name}] model-level assets done in {time.monotonic() - start:.0f}s")
        else:
            print(f"[{name}] model-level assets already materialized (use --force to redo)")
        meta = storage.read(root, MODEL_METADATA, name)
        n_layers = int(meta["num_layers"][0])
        layer_keys = [str(i) for i in range(n_layers)]
        missing_keys = [k for k in layer_keys if k not in instance.get_dynamic_partitions("layer")]
        if missing_keys:
            instance.add_dynamic_partitions(layer_partitions.name, missing_keys)
        done_layers = set()
        for asset in LAYER_ASSETS:
            done_layers |= {str(k) for k in instance.get_materialized_partitions(asset.key)}
        todo = [i for i in range(n_layers) if force or str(layer_key(name, i)) not in done_layers]
        for layer in tqdm(todo, desc=f"[{name}] per-layer assets", unit="layer"):
            dg.materialize(
                ALL_ASSETS,
                selection=LAYER_ASSETS,
                partition_key=layer_key(name, layer),
                instance=instance,
                resources=resources,
                run_config=QUIET,
            )
    _common.progress_hook = None


def serve(host: str, port: int) -> None:
    import uvicorn

    from dd_api.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


def up(args: argparse.Namespace) -> None:
    """Materialize, then run the API and the Dagster UI until interrupted."""
    materialize(args.model or None, args.force)
    exe = sys.executable
    api = subprocess.Popen(
        [exe, "-m", "deepdecipher.cli", "serve", "--host", args.host, "--port", str(args.port)]
    )
    ui = subprocess.Popen(
        [exe, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.ui_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"\nAPI:        http://{args.host}:{args.port}/api")
    print(f"  example:  http://{args.host}:{args.port}/api/{(args.model or ['smollm2-135m'])[0]}/neuroscope/0/0")
    print(f"API docs:   http://{args.host}:{args.port}/schema/swagger")
    print(f"Dagster UI: http://{args.host}:{args.ui_port}\nCtrl-C stops both.", flush=True)
    try:
        while api.poll() is None and ui.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in (api, ui):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in (api, ui):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


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

    u = sub.add_parser("up", help="materialize, then serve the API and the Dagster UI")
    u.add_argument("--model", action="append")
    u.add_argument("--force", action="store_true")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, default=8000)
    u.add_argument("--ui-port", type=int, default=3000)

    args = parser.parse_args(argv)
    _configure(args)
    if args.command == "materialize":
        materialize(args.model, args.force)
    elif args.command == "serve":
        serve(args.host, args.port)
    else:
        up(args)


if __name__ == "__main__":
    main()
