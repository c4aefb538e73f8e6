// Package turn is Salon's embedded TURN relay on pion/turn/v2.
package turn
