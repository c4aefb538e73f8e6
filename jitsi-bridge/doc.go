// Package jitsibridge hands the largest rooms' calls to a Jitsi deployment.
package jitsibridge
