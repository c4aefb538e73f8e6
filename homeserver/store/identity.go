package store

import "context"

// LDAPUser links an LDAP entry to the local account made for it at its
// first sign-in. EntryID is the entry's stable ID (its entryUUID, or its
// DN when so configured): a renamed entry keeps its account.
type LDAPUser struct {
	EntryID   string
	Localpart string
	DN        string
	// DisplayName and Mail are the directory's values at the last sign-in,
	// so a sign-in changes the profile only when the directory changed.
	DisplayName string
	Mail        string
	// MissingSinceTS is when the entry was first seen gone from (or
	// disabled in) the directory; 0 while it is there.
	MissingSinceTS int64
	UpdatedTS      int64
}

// LDAPMembership is a room membership (an invite or a join) the LDAP
// group sync made because the user is in Group.
type LDAPMembership struct {
	RoomID  string
	UserID  string
	Group   string
	AddedTS int64
}

// Identity stores what outside identity providers map to local accounts.
type Identity interface {
	// CreateLDAPAccount makes the account and its link to the entry in one
	// transaction; ErrExists when the localpart is taken or the entry is
	// linked already.
	CreateLDAPAccount(ctx context.Context, a Account, displayName string, u LDAPUser) error
	LDAPUserByEntry(ctx context.Context, entryID string) (LDAPUser, error)
	LDAPUserByLocalpart(ctx context.Context, localpart string) (LDAPUser, error)
	// LDAPUsers lists every linked entry.
	LDAPUsers(ctx context.Context) ([]LDAPUser, error)
	// UpdateLDAPUser stores a linked entry's DN, display name and mail;
	// ErrNotFound when it is not linked.
	UpdateLDAPUser(ctx context.Context, u LDAPUser) error
	// SetLDAPMissing records since when an entry is gone (0: present).
	SetLDAPMissing(ctx context.Context, entryID string, sinceTS int64) error
	// LDAPMemberships lists the memberships the group sync made in a room.
	LDAPMemberships(ctx context.Context, roomID string) ([]LDAPMembership, error)
	// PutLDAPMemberships records (or replaces) some, in one transaction;
	// a later one of the same room and user replaces an earlier one.
	PutLDAPMemberships(ctx context.Context, ms ...LDAPMembership) error
	// DeleteLDAPMemberships forgets some users' of a room, in one
	// transaction.
	DeleteLDAPMemberships(ctx context.Context, roomID string, userIDs ...string) error
}
