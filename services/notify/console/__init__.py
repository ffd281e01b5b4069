"""The web console: the notify API's data as server-rendered pages for companies, the ops desk and crisis teams."""
