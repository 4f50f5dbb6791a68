"""What SLOs drive: recording and alerting rules, the error budget, the release gate, the dashboard."""
