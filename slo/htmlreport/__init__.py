"""The package of `slo report`: what a run left in reports/ as one offline HTML page."""
