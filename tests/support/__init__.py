"""Helpers shared by the tests: one loopback multi-host HTTP server (`loopback`) and the sites it serves
(`sites`, `faultnet`), the environment of a wire process (`env`), wire processes (`cluster`), polling
and /proc helpers (`helpers`), the console's test data (`console`), paths (`paths`), the compose file and
Dockerfile as read without an engine (`compose`) and a service run as its container would (`container`)."""
