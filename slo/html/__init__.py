"""Drawing HTML pages: the one escaping rule, tables, badges and inline SVG charts (no script)."""
