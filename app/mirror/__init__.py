"""Mirror starred GitHub repositories into OneDev and keep the mirrors current (issue 5)."""
