"""The demo's Django site: pages that show which uWSGI node answered."""
