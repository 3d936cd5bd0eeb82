"""Outputs: where the spool's records go. Each built-in output is a package here
(`zabbix`, `line`, `prometheus`) and registers through the `plogd.outputs` entry-point group,
as third-party plugins do. The core (records, windows, metrics, formats, spool) never imports
from here."""
