"""The leaderboard: board data from the store, the web app, the static export, the terminal view."""
