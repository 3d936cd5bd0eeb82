"""The Zabbix side of plogd, made from its configuration: which items it needs (items), a
template of them (template)."""
