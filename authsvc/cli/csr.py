"""`authsvc csr list` and `authsvc csr-signer`: the cluster's CertificateSigningRequests.

The signer is a process of its own (authsvc/cluster/csr/process.py says why), not a flag of
`authsvc serve`; docs/csr-signer.md is the operator's guide.
"""

from __future__ import annotations

import click

from authsvc.cli import CliState, long_lived_process
from authsvc.cli.options import cluster_options
from authsvc.cli.output import emit, output_option


@click.group()
def csr() -> None:
    """The cluster's CertificateSigningRequests (certificates.k8s.io/v1)."""


@csr.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(["pending", "approved", "issued", "denied", "failed"], case_sensitive=False),
    help="Only requests in this state; repeatable.",
)
@click.option("--signer", default=None, metavar="NAME", help="Only requests for this signerName.")
@output_option()
@cluster_options
@click.pass_obj
def list_requests(state: CliState, states: tuple[str, ...], signer: str | None, output_format: str) -> None:
    """Requests with their state (pending, approved, issued, denied, failed) and the decision's reason.

    \b
    Examples:
      authsvc csr list
      authsvc csr list --state failed -o json
      authsvc csr list --signer kubernetes.io/kubelet-serving --state pending
    """
    from authsvc.cluster.csr.listing import COLUMNS, rows

    client = state.require_cluster()
    certificates = client.certificates
    listed = client.call("list CertificateSigningRequests", certificates.list_certificate_signing_request)
    found = rows(listed.items or [], state.clock()(), states=states, signer=signer)
    if output_format == "table" and not found:
        click.echo("No CertificateSigningRequests found.", err=True)
        return
    emit(found, output_format, columns=COLUMNS)


@click.command("csr-signer")
@click.option(
    "--identity",
    default=None,
    metavar="NAME",
    help="This replica's name in the Lease. [default: csr_signer.identity, else <hostname>_<random>]",
)
@click.option(
    "--metrics-bind",
    default=None,
    metavar="HOST:PORT",
    help="Serve /metrics (plain HTTP) here. [default: csr_signer.metrics_bind]",
)
@cluster_options
@click.pass_obj
def csr_signer(state: CliState, identity: str | None, metrics_bind: str | None) -> None:
    """Sign the cluster's approved CertificateSigningRequests under authsvc's policy (and approve kubelets'
    where csr_signer.*.approve is on). Runs until SIGTERM; replicas elect a leader on a Lease.

    Signs kubernetes.io/kube-apiserver-client, kubernetes.io/kube-apiserver-client-kubelet,
    kubernetes.io/kubelet-serving and the custom signerNames in csr_signer.custom, each with the CA
    its settings name; every certificate is recorded in the inventory. A request the policy refuses
    is marked Failed with the reason (see docs/csr-signer.md).

    \b
    Examples:
      authsvc csr-signer --kubeconfig csr-signer.kubeconfig
      authsvc csr-signer --identity signer-a --metrics-bind 127.0.0.1:9105
    """
    import logging
    import signal

    from authsvc.cli.serve import parse_bind
    from authsvc.cluster.csr.process import build_signer_process
    from authsvc.metrics.csr import serve

    long_lived_process()
    home = state.home()
    bind = metrics_bind or home.settings.csr_signer.metrics_bind
    address = parse_bind(bind, "--metrics-bind" if metrics_bind else "csr_signer.metrics_bind") if bind else None
    client = state.require_cluster()
    # Fail now, in one line, when the API server cannot be reached or the credentials cannot list
    # requests; later outages are waited out.
    client.call("list CertificateSigningRequests", client.certificates.list_certificate_signing_request, limit=1)
    process = build_signer_process(home, client, identity=identity)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if address is not None:
        serve(process.metrics, address)
    names = ", ".join(f"{s.name} ({s.ca_name}{', approving' if s.approves else ''})" for s in process.signers.values())
    click.echo(f"authsvc csr-signer: {process.elector.identity} on {process.elector.where} at {client.where}", err=True)
    click.echo(f"authsvc csr-signer: signs {names}", err=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: process.shutdown())
    process.run()
