"""`orca k8s gc` (also `orca-k8s gc`): remove Orca applications whose driver stopped renewing its lease."""

from __future__ import annotations

import argparse
import sys

from orca_core.errors import OrcaError


def _gc(args) -> int:
    from orca_k8s import owner, target
    from orca_k8s.kube import Kube

    options = {"kubeconfig": args.kubeconfig, "context": args.context, "namespace": args.namespace,
               "master": args.master}
    kube = Kube(target.resolve(options))
    try:
        namespace = None if args.all_namespaces else kube.target.namespace
        gone = owner.sweep(kube, namespace, dry_run=args.dry_run)
    finally:
        kube.close()
    verb = "would remove" if args.dry_run else "removed"
    for ns, app in gone:
        print(f"{verb} {app} in namespace {ns}")
    if not gone:
        print(f"no expired Orca application in {'any namespace' if namespace is None else f'namespace {namespace}'}")
    return 0


def add_commands(sub) -> None:
    """The `gc` subcommand, under `orca k8s` or `orca-k8s`."""
    p = sub.add_parser("gc", help="delete the pods and owners of applications whose driver died")
    p.add_argument("--namespace", "-n", help="namespace (default: the kubeconfig context's)")
    p.add_argument("--all-namespaces", "-A", action="store_true")
    p.add_argument("--kubeconfig")
    p.add_argument("--context")
    p.add_argument("--master", help="API server URL, overriding the context's")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    p.set_defaults(func=_gc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orca-k8s", description="Orca's Kubernetes housekeeping.")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except OrcaError as error:
        print(f"orca-k8s: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
