"""plogd: nginx, Apache and regex-described logs -> per-window metrics -> Zabbix."""
__version__ = "0.1.0"
