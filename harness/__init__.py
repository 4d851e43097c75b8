"""harness: benchmark and leaderboard harness for reasoning-intensive reranking."""

__version__ = "0.1.0"
