"""The leaderboard: validate untrusted RunResult submissions, file them, build the board.

A submission is only ever parsed as JSON (size and depth checked first) and
validated against RunResult and the registry; nothing in it is imported,
evaluated or unpickled.
"""
