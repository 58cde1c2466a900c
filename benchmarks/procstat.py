"""Memory figures of the running benchmark process, shared by the benchmark scripts."""

from __future__ import annotations


def rss_kib() -> tuple[int, int]:
    """(current, peak) resident set size of this process in KiB, from /proc."""
    fields = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
