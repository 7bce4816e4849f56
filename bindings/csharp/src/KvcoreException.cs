// SPDX-License-Identifier: Apache-2.0
namespace Kvcore {

/// <summary>A kvcore call failed: Status says how, Message says why (kvc_last_error_message()).</summary>
public class KvcoreException : System.Exception {
  public Status Status { get; }

  public KvcoreException(Status status, string message)
      : base(Library.StatusString(status) + ": " + message) {
    Status = status;
  }
}

}
