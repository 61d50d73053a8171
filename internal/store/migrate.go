package store

// Migration is one schema step of a back end. Back ends keep their own SQL
// (each is written natively) and apply steps in Version order inside a
// transaction, recording them in a clawea_migrations table.
type Migration struct {
	Version int
	Name    string
	SQL     string
}
