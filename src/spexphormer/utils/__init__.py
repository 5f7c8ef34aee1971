"""Small helpers shared by every stage: atomic files, memory measurement, tables, devices."""
