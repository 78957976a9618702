"""Where measurements and the environment they were taken in are kept."""
