"""Real receivers for the line output's tests, reusable by end-to-end tests: each runs its
own instance on 127.0.0.1 with free ports and a temporary directory (carbon.Carbon,
influx.Influx); install.sh installs the Debian packages."""
