"""The probe layer: async transport around the POP3 core, the checks, one result vocabulary."""

from pop3watch.probe.pop3_check import check_pop3
from pop3watch.probe.registry import PROBERS, Prober, run_probe
from pop3watch.probe.result import (
    CertInfo,
    ChainCertInfo,
    CheckResult,
    ErrorInfo,
    MailboxInfo,
    Status,
    Timings,
    TlsInfo,
)
from pop3watch.probe.settings import AuthMode, CheckSettings, IpFamily, TcpSettings, TlsMode
from pop3watch.probe.tcp_check import check_tcp
from pop3watch.probe.transcript import KeepTranscript

__all__ = [
    "PROBERS",
    "AuthMode",
    "CertInfo",
    "ChainCertInfo",
    "CheckResult",
    "CheckSettings",
    "ErrorInfo",
    "IpFamily",
    "KeepTranscript",
    "MailboxInfo",
    "Prober",
    "Status",
    "TcpSettings",
    "Timings",
    "TlsInfo",
    "TlsMode",
    "check_pop3",
    "check_tcp",
    "run_probe",
]
