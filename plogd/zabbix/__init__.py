"""plogd and the Zabbix server: the template of a configuration, provisioning through the API."""
