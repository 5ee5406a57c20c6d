"""One module per entry point (`train`, `evaluate`, `render`, `view`, `export`) and what they share:
the command line (`cli`), config checks (`config_checks`), the run's saved config (`run_config`) and the
run lock (`run_lock`).
"""
